"""The audit store core: append, chain, verification, and append-only enforcement."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

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
