"""The inbox row as the write-ahead log of its ``hl7.received`` audit record: the audit writer
sets ``audited_at`` with the record, the start-up sweep writes what a killed listener never did,
and no row gets two records."""

from __future__ import annotations

from sqlalchemy import Engine, select, update

from cds_service.audit import AuditTrail
from cds_service.db.base import utcnow
from cds_service.hl7.audit import AuditSink, recover_received_records
from cds_service.hl7.repository import InboxRepository, NewMessage
from cds_service.models.audit import AuditRecord
from cds_service.models.hl7 import Hl7InboxMessage
from tests.hl7_support import make_oru, running_listener


def _store(engine: Engine, control_id: str) -> int:
    now = utcnow()
    (result,) = InboxRepository(engine).store_many(
        [
            NewMessage(
                "LAB",
                "FAC",
                control_id,
                "ORU^R01^ORU_R01",
                "2.5.1",
                "utf-8",
                "",
                "",
                make_oru(control_id),
                now,
                "127.0.0.1",
                "received",
                None,
                b"ack",
            )
        ]
    )
    return result.id


def _received(engine: Engine) -> list[tuple[str | None, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditRecord.event_subtype, AuditRecord.details)
            .where(AuditRecord.event_type == "hl7.received")
            .order_by(AuditRecord.seq)
        ).all()
    return [(subtype, details["inboxId"]) for subtype, details in rows]


def test_listener_marks_rows_audited_with_their_record(engine: Engine) -> None:
    with running_listener(engine) as listener:
        client = listener.client()
        assert client.request(make_oru("W1")).code == "AA"
        assert client.request(make_oru("W1")).code == "AA"  # duplicate: no second WAL record
    with engine.connect() as conn:
        (row_id, audited_at) = conn.execute(
            select(Hl7InboxMessage.id, Hl7InboxMessage.audited_at)
        ).one()
    assert audited_at is not None
    assert _received(engine) == [("received", row_id), ("duplicate", row_id)]


def test_sweep_writes_missing_records_once(engine: Engine) -> None:
    trail = AuditTrail(engine, source_observer="test")
    lost = [_store(engine, f"L{i}") for i in range(3)]  # stored, then the process died
    assert recover_received_records(trail) == 3
    assert recover_received_records(trail) == 0
    assert _received(engine) == [("recovered", i) for i in lost]
    # A record still queued for a row the sweep settled is dropped, not written twice.
    sink = AuditSink(trail)
    sink.submit(
        wal_inbox_id=lost[0],
        action="C",
        event_type="hl7.received",
        event_subtype="received",
        agent_who="t",
        details={"inboxId": lost[0]},
    )
    sink.close()
    assert _received(engine) == [("recovered", i) for i in lost]
    assert trail.verify().ok


def test_sweep_stops_at_the_bound(engine: Engine) -> None:
    trail = AuditTrail(engine, source_observer="test")
    old, new = _store(engine, "B1"), _store(engine, "B2")
    with engine.begin() as conn:  # both pending; only the older one predates the start
        conn.execute(update(Hl7InboxMessage).values(audited_at=None))
    assert recover_received_records(trail, up_to_id=old) == 1
    assert _received(engine) == [("recovered", old)]
    with engine.connect() as conn:
        pending = conn.execute(
            select(Hl7InboxMessage.id).where(Hl7InboxMessage.audited_at.is_(None))
        ).scalars()
        assert list(pending) == [new]
