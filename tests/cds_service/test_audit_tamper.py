"""Tamper suite on PostgreSQL: an insider with superuser rights disables the append-only
triggers (``ALTER TABLE … DISABLE TRIGGER USER``) and changes the trail; ``verify`` must detect
every kind of change, and name where.

Layout for every case: 20 records sealed by checkpoints over seq 1-8, 9-16 and 17-20, then
two unsealed records 21-22.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, create_engine, text

from cds_service.audit import AuditTrail
from cds_service.audit.chain import HASHED_FIELDS, chain_hash
from cds_service.audit.checkpoints import seal, tree_head_statement, verify_integrity
from cds_service.audit.signing import CheckpointSigner, Keyring
from cds_service.db.engine import make_engine

pytestmark = pytest.mark.db


@dataclass
class Case:
    name: str
    tamper: Callable[[Connection], None]
    first_seq: int
    reason: str


def _rewrite_chain_from(conn: Connection, seq: int) -> None:
    """Recompute every hash from ``seq`` on, as an attacker who knows the algorithm would."""
    rows = conn.execute(
        text("SELECT * FROM audit_records WHERE seq >= :s ORDER BY seq"), {"s": seq - 1}
    ).mappings()
    rows = [dict(r) for r in rows]
    prev = rows[0]["record_hash"]
    for row in rows[1:]:
        row["prev_hash"] = prev
        new_hash = chain_hash(prev, {k: row[k] for k in HASHED_FIELDS})
        conn.execute(
            text("UPDATE audit_records SET prev_hash = :p, record_hash = :h WHERE seq = :s"),
            {"p": prev, "h": new_hash, "s": row["seq"]},
        )
        prev = new_hash


def _update_field(conn: Connection) -> None:
    conn.execute(text("UPDATE audit_records SET patient_id = 'Patient/vip' WHERE seq = 5"))


def _delete_record(conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_records WHERE seq = 6"))


def _reorder(conn: Connection) -> None:
    conn.execute(text("UPDATE audit_records SET seq = -1 WHERE seq = 10"))
    conn.execute(text("UPDATE audit_records SET seq = 10 WHERE seq = 9"))
    conn.execute(text("UPDATE audit_records SET seq = 9 WHERE seq = -1"))


def _insert_forged(conn: Connection, *, rewrite: bool) -> None:
    conn.execute(text("UPDATE audit_records SET seq = seq + 1000 WHERE seq >= 12"))
    conn.execute(text("UPDATE audit_records SET seq = seq - 999 WHERE seq >= 1012"))
    prev = conn.execute(text("SELECT record_hash FROM audit_records WHERE seq = 11")).scalar_one()
    template = dict(
        conn.execute(text("SELECT * FROM audit_records WHERE seq = 11")).mappings().one()
    )
    forged = {
        **template,
        "seq": 12,
        "id": "00000000-0000-4000-8000-00000000f0e1",
        "agent_who": "https://forger.example",
        "prev_hash": prev,
    }
    forged["record_hash"] = chain_hash(prev, {k: forged[k] for k in HASHED_FIELDS})
    conn.execute(
        text(
            "INSERT INTO audit_records (seq, id, recorded, action, event_type, outcome, "
            "agent_type, agent_who, entities, source_observer, details, prev_hash, record_hash) "
            "VALUES (:seq, :id, :recorded, :action, :event_type, :outcome, :agent_type, "
            ":agent_who, CAST(:entities AS jsonb), :source_observer, CAST(:details AS jsonb), "
            ":prev_hash, :record_hash)"
        ),
        {**forged, "entities": "[]", "details": "{}"},
    )
    # The forged row must hash exactly as inserted (its other fields default to NULL).
    row = dict(conn.execute(text("SELECT * FROM audit_records WHERE seq = 12")).mappings().one())
    fixed = chain_hash(prev, {k: row[k] for k in HASHED_FIELDS})
    conn.execute(text("UPDATE audit_records SET record_hash = :h WHERE seq = 12"), {"h": fixed})
    if rewrite:
        _rewrite_chain_from(conn, 13)


def _truncate_tail(conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_records WHERE seq > 16"))


def _replace_checkpoint_root(conn: Connection) -> None:
    conn.execute(text("UPDATE audit_checkpoints SET root_hash = repeat('ab', 32) WHERE id = 2"))


def _resign_checkpoint_with_own_key(conn: Connection) -> None:
    """Rewrite the chain from seq 10 and re-seal checkpoint 2 and 3 with the attacker's key."""
    conn.execute(text("UPDATE audit_records SET agent_who = 'x' WHERE seq = 10"))
    _rewrite_chain_from(conn, 10)
    attacker = CheckpointSigner.generate()
    from cds_service.audit import merkle

    for cp_id, first, last in ((2, 9, 16), (3, 17, 20)):
        hashes = conn.execute(
            text("SELECT record_hash FROM audit_records WHERE seq BETWEEN :a AND :b ORDER BY seq"),
            {"a": first, "b": last},
        ).scalars()
        hashes = list(hashes)
        root = merkle.root_from_leaf_hashes(
            [merkle.leaf_hash(bytes.fromhex(h)) for h in hashes]
        ).hex()
        created = conn.execute(
            text("SELECT created FROM audit_checkpoints WHERE id = :i"), {"i": cp_id}
        ).scalar_one()
        statement = tree_head_statement(
            first_seq=first,
            last_seq=last,
            tree_size=last - first + 1,
            root_hash=root,
            last_record_hash=hashes[-1],
            key_id=attacker.key_id,
            created=created,
        )
        conn.execute(
            text(
                "UPDATE audit_checkpoints SET root_hash = :r, last_record_hash = :l, "
                "key_id = :k, signature = :s WHERE id = :i"
            ),
            {
                "r": root,
                "l": hashes[-1],
                "k": attacker.key_id,
                "s": attacker.sign(statement),
                "i": cp_id,
            },
        )


CASES = [
    Case("update a field", _update_field, 5, "altered"),
    Case("delete a record", _delete_record, 7, "sequence gap"),
    Case("reorder two records", _reorder, 9, "prev_hash does not match"),
    Case(
        "insert a forged record",
        lambda c: _insert_forged(c, rewrite=False),
        13,
        "prev_hash does not match",
    ),
    Case(
        "insert a forged record and rewrite the chain after it",
        lambda c: _insert_forged(c, rewrite=True),
        9,
        "checkpoint 2: Merkle tree head",
    ),
    Case("truncate the tail", _truncate_tail, 17, "tail truncated"),
    Case("replace a checkpoint's root", _replace_checkpoint_root, 9, "signature does not verify"),
    Case(
        "rewrite records and re-sign checkpoints with another key",
        _resign_checkpoint_with_own_key,
        9,
        "untrusted key",
    ),
]


@pytest.fixture
def sealed(pg_url: str) -> Iterator[tuple[AuditTrail, Keyring]]:
    engine = make_engine(pg_url)
    trail = AuditTrail(engine, source_observer="tamper-suite")
    signer = CheckpointSigner.generate()
    for i in range(20):
        trail.record(
            action="R",
            event_type="cds-hooks.call",
            agent_who="https://ehr.example.org",
            patient_id=f"Patient/p{i % 3}",
            request_id=f"r{i}",
        )
    seal(engine, signer, max_records=8)
    for i in range(2):
        trail.record(action="R", event_type="fhir.read", agent_who="ehr", request_id=f"u{i}")
    keyring = Keyring([signer.public_key])
    assert verify_integrity(engine, keyring).ok
    yield trail, keyring
    engine.dispose()


def _as_insider(pg_url: str, tamper: Callable[[Connection], None]) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
        conn.execute(text("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER"))
        tamper(conn)
        conn.execute(text("ALTER TABLE audit_records ENABLE TRIGGER USER"))
        conn.execute(text("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER"))
    engine.dispose()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verify_detects_tampering(
    sealed: tuple[AuditTrail, Keyring], pg_url: str, case: Case
) -> None:
    trail, keyring = sealed
    _as_insider(pg_url, case.tamper)
    report = verify_integrity(trail.engine, keyring)
    assert not report.ok, f"{case.name} went undetected"
    first = report.first_problem
    assert first is not None
    assert first.seq == case.first_seq, (case.name, report.problems)
    assert case.reason in first.reason, (case.name, first.reason)


def test_the_suite_can_fail(sealed: tuple[AuditTrail, Keyring], pg_url: str) -> None:
    """A no-op "tamper" leaves the trail valid: the detections above are not vacuous."""
    trail, keyring = sealed
    _as_insider(pg_url, lambda conn: None)
    assert verify_integrity(trail.engine, keyring).ok
