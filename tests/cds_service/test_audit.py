"""The audit store core: append, chain, verification, and append-only enforcement."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from cds_service.audit import GENESIS_HASH, AuditTrail, Outcome, chain_hash
from cds_service.audit.chain import canonical_bytes
from cds_service.db.engine import make_engine


@pytest.fixture
def trail(database_url: str) -> Iterator[AuditTrail]:
    engine = make_engine(database_url)
    yield AuditTrail(engine, source_observer="test-instance")
    engine.dispose()


def _record(trail: AuditTrail, n: int) -> None:
    for i in range(n):
        trail.record(
            action="R",
            event_type="cds-hooks.call",
            agent_who="https://ehr.example.org",
            patient_id=f"Patient/p{i % 3}",
            hook_instance=f"hook-{i}",
            entities=[{"type": "Observation", "id": f"obs-{i}"}],
            request_id=f"req-{i}",
            details={"latency_ms": 12.5, "cards": i},
        )


def test_first_record_links_to_genesis(trail: AuditTrail) -> None:
    ref = trail.record(action="E", event_type="system.start", agent_type="system", agent_who="x")
    assert ref.seq == 1
    with trail.engine.connect() as conn:
        rows = list(trail.iter_rows(conn))
    row = rows[0]
    assert row["prev_hash"] == GENESIS_HASH
    assert row["recorded"].tzinfo is not None
    assert ref.record_hash == chain_hash(GENESIS_HASH, row)


def test_chain_links_and_verifies(trail: AuditTrail) -> None:
    _record(trail, 25)
    result = trail.verify()
    assert result.ok
    assert result.checked == 25
    with trail.engine.connect() as conn:
        rows = list(trail.iter_rows(conn))
    assert [r["seq"] for r in rows] == list(range(1, 26))
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["record_hash"]


def test_record_rejects_invalid_outcome(trail: AuditTrail) -> None:
    from cds_service.errors import DatabaseError

    with pytest.raises((DatabaseError, ValueError)):
        trail.record(action="X", event_type="bad", agent_who="x")  # type: ignore[arg-type]


def test_canonical_form_is_stable() -> None:
    fields = {
        "seq": 1,
        "recorded": datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC),
        "entities": [{"type": "Patient", "id": "p1"}],
        "details": {"b": 1, "a": 2},
    }
    encoded = canonical_bytes(fields).decode()
    assert '"recorded":"2026-01-02T03:04:05.000600Z"' in encoded
    assert encoded.index('"a":2') < encoded.index('"b":1')
    assert chain_hash(GENESIS_HASH, fields) == chain_hash(GENESIS_HASH, dict(fields))
    changed = {**fields, "seq": 2}
    assert chain_hash(GENESIS_HASH, fields) != chain_hash(GENESIS_HASH, changed)


def _tamper(database_url: str, statement: str) -> None:
    """Change the table behind the service's back (as a superuser who disabled the trigger)."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
        conn.execute(text(statement))
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_records ENABLE TRIGGER USER"))
    engine.dispose()


@pytest.mark.parametrize(
    ("statement", "broken_seq", "reason"),
    [
        ("UPDATE audit_records SET patient_id = 'Patient/other' WHERE seq = 4", 4, "altered"),
        ("DELETE FROM audit_records WHERE seq = 6", 7, "sequence gap"),
        ("UPDATE audit_records SET prev_hash = record_hash WHERE seq = 3", 3, "prev_hash"),
    ],
)
def test_verify_finds_first_tampered_record(
    trail: AuditTrail, database_url: str, statement: str, broken_seq: int, reason: str
) -> None:
    _record(trail, 10)
    _tamper(database_url, statement)
    result = trail.verify()
    assert not result.ok
    assert result.first_break is not None
    assert result.first_break.seq == broken_seq
    assert reason in result.first_break.reason


@pytest.mark.db
def test_postgres_refuses_update_delete_truncate(pg_url: str) -> None:
    trail_engine = make_engine(pg_url)
    trail = AuditTrail(trail_engine, source_observer="t")
    _record(trail, 2)
    engine = create_engine(pg_url)
    for statement in (
        "UPDATE audit_records SET outcome = 4",
        "DELETE FROM audit_records",
        "TRUNCATE audit_records",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    engine.dispose()
    assert trail.count() == 2
    assert trail.verify().ok
    trail_engine.dispose()


def test_outcome_codes_are_fhir_values() -> None:
    assert [int(o) for o in Outcome] == [0, 4, 8, 12]


def test_concurrent_appends_share_transactions_and_each_caller_gets_its_own_refs(
    trail: AuditTrail,
) -> None:
    """Group commit: 16 threads x 20 appends (single records and batches) make one valid
    chain with every record once, and each caller's refs name exactly its own records."""
    errors: list[BaseException] = []
    owned: dict[str, str] = {}  # record id -> request id of the caller that got its ref
    lock = threading.Lock()

    def worker(t: int) -> None:
        try:
            for i in range(20):
                rid = f"t{t}-{i}"
                if i % 2:
                    refs = trail.record_many(
                        [
                            {"action": "E", "event_type": "x", "agent_who": "a", "request_id": rid},
                            {"action": "E", "event_type": "y", "agent_who": "a", "request_id": rid},
                        ]
                    )
                else:
                    refs = [trail.record(action="E", event_type="x", agent_who="a", request_id=rid)]
                with lock:
                    owned.update({ref.id: rid for ref in refs})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = trail.verify()
    assert result.ok
    assert result.checked == 16 * (10 + 20)
    with trail.engine.connect() as conn:
        rows = {r["id"]: r["request_id"] for r in trail.iter_rows(conn)}
    assert rows == owned


def test_a_failing_member_of_a_shared_append_fails_alone(trail: AuditTrail) -> None:
    """A caller whose rows cannot be written gets the error; callers appended in the same
    group keep their records."""
    start = threading.Barrier(9)
    outcomes: dict[int, str] = {}

    def bad(conn: Any) -> list[dict[str, Any]]:
        raise RuntimeError("this caller's own write failed")

    def worker(t: int) -> None:
        start.wait()
        try:
            if t == 4:
                trail.record_many(bad)
            else:
                trail.record(action="E", event_type="x", agent_who="a", request_id=f"t{t}")
            outcomes[t] = "ok"
        except RuntimeError:
            outcomes[t] = "failed"

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == {t: "failed" if t == 4 else "ok" for t in range(9)}
    assert trail.verify().checked == 8
