"""Checkpoints, integrity verification, inclusion proofs and archiving (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from cds_service.audit import AuditTrail
from cds_service.audit.archive import ArchiveError, archive, verify_archive_file
from cds_service.audit.checkpoints import (
    ProofError,
    check_proof,
    prove,
    seal,
    verify_integrity,
)
from cds_service.audit.signing import CheckpointSigner, Keyring
from cds_service.db.engine import make_engine
from cds_service.errors import ConflictError


@pytest.fixture
def trail(database_url: str) -> Iterator[AuditTrail]:
    engine = make_engine(database_url)
    yield AuditTrail(engine, source_observer="test")
    engine.dispose()


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner.generate()


def _fill(trail: AuditTrail, n: int, *, recorded: datetime | None = None) -> list[str]:
    return [
        trail.record(
            action="R",
            event_type="cds-hooks.call",
            agent_who="https://ehr.example.org",
            patient_id=f"Patient/p{i % 4}",
            request_id=f"req-{i}",
            recorded=recorded,
        ).id
        for i in range(n)
    ]


def test_seal_covers_records_in_batches_and_verifies(
    trail: AuditTrail, signer: CheckpointSigner
) -> None:
    _fill(trail, 11)
    created = seal(trail.engine, signer, max_records=4)
    assert [(c.first_seq, c.last_seq, c.tree_size) for c in created] == [
        (1, 4, 4),
        (5, 8, 4),
        (9, 11, 3),
    ]
    assert seal(trail.engine, signer) == []
    _fill(trail, 2)
    report = verify_integrity(trail.engine, Keyring([signer.public_key]))
    assert report.ok, report.problems
    assert report.records_checked == 13
    assert report.checkpoints_checked == 3
    assert report.unsealed == 2


def test_untrusted_key_fails_verification(trail: AuditTrail, signer: CheckpointSigner) -> None:
    _fill(trail, 3)
    seal(trail.engine, signer)
    other = CheckpointSigner.generate()
    report = verify_integrity(trail.engine, Keyring([other.public_key]))
    assert not report.ok
    assert "untrusted key" in report.problems[0].reason


def test_seal_refuses_a_broken_chain(
    trail: AuditTrail, signer: CheckpointSigner, database_url: str
) -> None:
    _fill(trail, 5)
    _tamper(database_url, "UPDATE audit_records SET agent_who = 'x' WHERE seq = 3")
    with pytest.raises(ConflictError, match="seq 3"):
        seal(trail.engine, signer)


def test_inclusion_proof_round_trip(trail: AuditTrail, signer: CheckpointSigner) -> None:
    ids = _fill(trail, 9)
    proof = prove(trail.engine, ids[6], signer)  # seals on demand
    proof = json.loads(json.dumps(proof))  # what a file holds
    result = check_proof(proof, pinned_key_id=signer.key_id)
    assert (result.record_id, result.seq, result.tree_size) == (ids[6], 7, 9)

    for mutate, message in [
        (lambda p: p["record"].__setitem__("patient_id", "Patient/other"), "content"),
        (lambda p: p["auditPath"].__setitem__(0, "00" * 32), "signed root"),
        (lambda p: p["treeHead"].__setitem__("rootHash", "11" * 32), "signed root"),
        (
            lambda p: p["treeHead"].__setitem__("signature", proof["treeHead"]["signature"][::-1]),
            "signature",
        ),
        (lambda p: p.__setitem__("leafIndex", 2), "position"),
    ]:
        broken = json.loads(json.dumps(proof))
        mutate(broken)
        with pytest.raises(ProofError, match=message):
            check_proof(broken)
    with pytest.raises(ProofError, match="not the trusted key"):
        check_proof(proof, pinned_key_id=CheckpointSigner.generate().key_id)


def _tamper(database_url: str, *statements: str) -> None:
    """Change the tables behind the service's back, as a superuser who disabled the triggers."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        pg = engine.dialect.name == "postgresql"
        if pg:
            conn.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER"))
        for statement in statements:
            conn.execute(text(statement))
        if pg:
            conn.execute(text("ALTER TABLE audit_records ENABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER"))
    engine.dispose()


def test_archive_writes_verifies_records_and_removes(
    trail: AuditTrail, signer: CheckpointSigner, tmp_path: Path, database_url: str
) -> None:
    old = datetime.now(UTC) - timedelta(days=3000)
    _fill(trail, 6, recorded=old)
    seal(trail.engine, signer, max_records=3)
    _fill(trail, 4)  # recent: must stay
    keyring = Keyring([signer.public_key])
    result = archive(
        trail.engine,
        trail,
        signer,
        keyring,
        before=datetime.now(UTC) - timedelta(days=2192),
        out_dir=tmp_path / "archive",
        agent_who="cli:test",
    )
    assert (result.first_seq, result.through_seq, result.records, result.checkpoints) == (
        1,
        6,
        6,
        2,
    )
    assert result.path is not None
    assert verify_archive_file(result.path, keyring).records == 6
    assert trail.count() == 4 + 1  # the recent records and the archive event
    report = verify_integrity(trail.engine, keyring)
    assert report.ok, report.problems
    assert report.first_seq == 7
    with trail.engine.connect() as conn:
        events = [
            r for r in trail.iter_rows(conn, from_seq=7) if r["event_type"] == "audit.archive"
        ]
    assert events[0]["details"]["throughSeq"] == 6
    assert events[0]["details"]["sha256"] == result.sha256

    # Deleting more, without an archive, is detected: nothing anchors the new oldest record.
    _tamper(database_url, "DELETE FROM audit_records WHERE seq = 7")
    broken = verify_integrity(trail.engine, keyring)
    assert not broken.ok
    reasons = " | ".join(p.reason for p in broken.problems)
    assert "no checkpoint ends at seq 7" in reasons
    assert "checkpoint 3: Merkle tree head over seq 7..10 does not match" in reasons

    # An altered archive file is detected offline.
    lines = result.path.read_text().splitlines()
    record = json.loads(lines[2])
    record["record"]["agent_who"] = "someone-else"
    lines[2] = json.dumps(record)
    result.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ArchiveError, match="altered"):
        verify_archive_file(result.path, keyring)


_FLAG = "SET LOCAL oncocds.audit_archive = 'on'"


def _run(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


@pytest.mark.db
def test_postgres_archive_delete_needs_the_session_flag_and_a_checkpoint(
    pg_url: str, signer: CheckpointSigner
) -> None:
    engine = make_engine(pg_url)
    trail = AuditTrail(engine, source_observer="t")
    _fill(trail, 4)
    seal(engine, signer)
    _fill(trail, 2)
    raw = create_engine(pg_url)
    # Without the flag: refused, as before.
    with pytest.raises(DBAPIError, match="append-only"):
        _run(raw, "DELETE FROM audit_records WHERE seq = 1")
    # With the flag but for unsealed records: refused.
    with pytest.raises(DBAPIError, match="unsealed seq 5"):
        _run(raw, _FLAG, "DELETE FROM audit_records WHERE seq = 5")
    # UPDATE stays refused even with the flag, and checkpoints are append-only.
    with pytest.raises(DBAPIError, match="append-only"):
        _run(raw, _FLAG, "UPDATE audit_records SET outcome = 4 WHERE seq = 1")
    for statement in ("DELETE FROM audit_checkpoints", "UPDATE audit_checkpoints SET key_id='x'"):
        with pytest.raises(DBAPIError, match="audit_checkpoints is append-only"):
            _run(raw, statement)
    # The flag is transaction-local: the next transaction is refused again.
    _run(raw, _FLAG, "DELETE FROM audit_records WHERE seq <= 2")
    with pytest.raises(DBAPIError, match="append-only"):
        _run(raw, "DELETE FROM audit_records WHERE seq = 3")
    assert trail.count() == 4
    raw.dispose()
    engine.dispose()
