"""``AuditTrail.record_many`` (used by the listener's audit writer): one transaction, chain
intact and in order, and ``record`` continues the same chain."""

from __future__ import annotations

from sqlalchemy import Engine, select

from cds_service.audit import AuditTrail
from cds_service.hl7.audit import AuditSink
from cds_service.models.audit import AuditRecord


def test_record_many_keeps_the_chain(engine: Engine) -> None:
    trail = AuditTrail(engine, source_observer="test")
    trail.record(action="E", event_type="first", agent_who="t")
    refs = trail.record_many(
        [
            {"action": "C", "event_type": "hl7.received", "agent_who": "t", "control_id": f"M{i}"}
            for i in range(5)
        ]
    )
    assert [r.seq for r in refs] == [2, 3, 4, 5, 6]
    trail.record(action="E", event_type="last", agent_who="t")
    assert trail.record_many([]) == []
    result = trail.verify()
    assert result.ok
    assert result.checked == 7
    with engine.connect() as conn:
        ids = list(conn.execute(select(AuditRecord.control_id).order_by(AuditRecord.seq)).scalars())
    assert ids == [None, "M0", "M1", "M2", "M3", "M4", None]


def test_sink_writes_everything_queued_before_close(engine: Engine) -> None:
    trail = AuditTrail(engine, source_observer="test")
    sink = AuditSink(trail)
    for i in range(120):
        sink.submit(action="C", event_type="hl7.received", agent_who="t", control_id=f"S{i}")
    sink.close()
    assert trail.count() == 120
    assert trail.verify().ok
