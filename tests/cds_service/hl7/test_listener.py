"""The MLLP listener on real sockets with a real database: ACK after commit, persistent
connections, duplicates, enhanced mode, an independent sender (python-hl7's ``mllp_send``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, func, select

from cds_service.models.hl7 import Hl7InboxMessage
from tests.hl7_support import RunningListener, frame, make_oru, parse_ack

MLLP_SEND = str(Path(sys.executable).parent / "mllp_send")


def _rows(engine: Engine) -> list[Hl7InboxMessage]:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        rows = list(session.scalars(select(Hl7InboxMessage).order_by(Hl7InboxMessage.id)))
        session.expunge_all()
    return rows


def test_independent_sender_mllp_send(
    listener: RunningListener, tmp_path: Path, engine: Engine
) -> None:
    """python-hl7's mllp_send (a separate implementation) sends three messages on one socket."""
    messages = [make_oru(f"MS{i}").decode().replace("\r", "\n") for i in range(3)]
    path = tmp_path / "batch.hl7"
    path.write_text("".join(messages))
    result = subprocess.run(
        [MLLP_SEND, "--loose", "-p", str(listener.port), "-f", str(path), listener.host],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    acks = [
        parse_ack(block.strip(b"\n").replace(b"\n", b"\r"))
        for block in result.stdout.replace(b"\r", b"\n").split(b"\n\n")
        if block.strip()
    ]
    assert [(a.code, a.acked_control_id) for a in acks] == [
        ("AA", "MS0"),
        ("AA", "MS1"),
        ("AA", "MS2"),
    ]
    assert [r.control_id for r in _rows(engine)] == ["MS0", "MS1", "MS2"]


def test_persistent_connection_answers_every_message_in_order(
    listener: RunningListener, engine: Engine
) -> None:
    client = listener.client()
    ids = [f"P{i:04d}" for i in range(40)]
    # Half sent one by one, half pipelined in a single write: ACKs come back in order either way.
    for control_id in ids[:20]:
        ack = client.request(make_oru(control_id))
        assert (ack.code, ack.acked_control_id) == ("AA", control_id)
    client.send_raw(b"".join(frame(make_oru(c)) for c in ids[20:]))
    for control_id in ids[20:]:
        ack = client.read_ack()
        assert ack is not None
        assert (ack.code, ack.acked_control_id) == ("AA", control_id)
    client.close()
    rows = _rows(engine)
    assert [r.control_id for r in rows] == ids
    assert {r.status for r in rows} == {"received"}
    assert all(r.raw == make_oru(r.control_id) for r in rows)
    assert all(r.ack is not None and b"MSA|AA|" + r.control_id.encode() in r.ack for r in rows)


def test_ack_is_committed_before_it_is_sent(listener: RunningListener, engine: Engine) -> None:
    """When the ACK arrives, a separate connection to the database already sees the row."""
    client = listener.client()
    for i in range(10):
        ack = client.request(make_oru(f"C{i}"))
        with engine.connect() as conn:
            stored = conn.execute(
                select(Hl7InboxMessage.ack).where(Hl7InboxMessage.control_id == f"C{i}")
            ).scalar_one()
        assert stored == ack.raw
    client.close()


def test_duplicate_gets_the_stored_ack_and_is_stored_once(
    listener: RunningListener, engine: Engine
) -> None:
    client = listener.client()
    first = client.request(make_oru("DUP1"))
    second = client.request(make_oru("DUP1"))
    other_connection = listener.client()
    third = other_connection.request(make_oru("DUP1"))
    assert first.raw == second.raw == third.raw  # same ACK, same ACK control id
    # Twice in one write (one store transaction): still one row and the same ACK.
    client.send_raw(frame(make_oru("DUP2")) + frame(make_oru("DUP2")))
    batch = [client.read_ack(), client.read_ack()]
    assert batch[0] is not None
    assert batch[1] is not None
    assert batch[0].raw == batch[1].raw
    assert batch[0].acked_control_id == "DUP2"
    # Same MSH-10 from another sender is a different message.
    assert client.request(make_oru("DUP1", sender="OTHER_LIS")).code == "AA"
    client.close()
    other_connection.close()
    keys = [(r.sending_application, r.control_id) for r in _rows(engine)]
    assert keys == [("MOLPATH_LIS", "DUP1"), ("MOLPATH_LIS", "DUP2"), ("OTHER_LIS", "DUP1")]


def test_enhanced_mode_commit_acks(listener: RunningListener, engine: Engine) -> None:
    client = listener.client()
    ack = client.request(make_oru("E1", accept_ack="AL", app_ack="AL"))
    assert (ack.code, ack.acked_control_id) == ("CA", "E1")
    # MSH-15 NE: no accept ACK at all; the next message's ACK is the next thing on the wire.
    client.send(make_oru("E2", accept_ack="NE", app_ack="AL"))
    ack = client.request(make_oru("E3", accept_ack="SU", app_ack="NE"))
    assert (ack.code, ack.acked_control_id) == ("CA", "E3")
    # ER: an accept ACK only on error; a success gets none.
    client.send(make_oru("E4", accept_ack="ER", app_ack="NE"))
    ack = client.request(make_oru("E5", accept_ack="ER", charset="KLINGON"))
    assert (ack.code, ack.acked_control_id) == ("CE", "E5")
    client.close()
    rows = {r.control_id: r for r in _rows(engine)}
    assert set(rows) == {"E1", "E2", "E3", "E4", "E5"}
    assert rows["E2"].ack is None
    assert rows["E5"].status == "failed"


def test_audit_records_received_and_ack_sent_with_control_id_only(
    listener: RunningListener,
) -> None:
    client = listener.client()
    client.request(make_oru("AUD1", patient_name="SECRETNAME^X"))
    client.close()
    listener.sink.close()  # drain the queue
    from cds_service.models.audit import AuditRecord

    with listener.repository.engine.connect() as conn:
        rows = conn.execute(
            select(AuditRecord.event_type, AuditRecord.control_id, AuditRecord.details)
        ).all()
        dump = str(conn.execute(select(AuditRecord.__table__)).all())
    assert [(r.event_type, r.control_id) for r in rows] == [
        ("hl7.received", "AUD1"),
        ("hl7.ack-sent", "AUD1"),
    ]
    assert "SECRETNAME" not in dump
    assert "MRN12345" not in dump
    with listener.repository.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Hl7InboxMessage)).scalar_one() == 1
