"""Enhanced mode: the application ACK (MSH-16) goes to the sender's own MLLP listener, a real
socket peer started here; without a route it is kept as ``no-route``; a peer that is down gets
retries with backoff, then ``failed``. Every attempt is audited."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from cds_service.audit import AuditTrail
from cds_service.db.base import utcnow
from cds_service.hl7.processing import GeneticResultProcessor
from cds_service.hl7.repository import InboxRepository, NewMessage
from cds_service.hl7.service import message_metadata
from cds_service.hl7.worker import Worker
from cds_service.models.audit import AuditRecord
from cds_service.models.hl7 import Hl7InboxMessage
from cds_service.settings import Hl7Settings
from tests.hl7_support import CR, FS, VT, make_oru, parse_ack, run_hl7_jobs
from tests.support.processes import free_port

SENDER = "MOLPATH_LIS|EXAMPLE_LAB"


@dataclass
class SenderListener:
    """The lab's own MLLP listener: takes one message per connection and answers ``code``."""

    port: int
    code: str = "AA"
    received: list[bytes] = field(default_factory=list)
    _server: socket.socket | None = None

    def serve(self) -> None:
        assert self._server is not None
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                buffer = b""
                while FS + CR not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buffer += chunk
                message = buffer[buffer.find(VT) + 1 : buffer.find(FS + CR)]
                self.received.append(message)
                control_id = parse_ack(message).msh(10)
                answer = f"MSH|^~\\&|LAB|X|ONCOCDS||20260101||ACK|R{control_id}|P|2.5.1\r"
                conn.sendall(VT + f"{answer}MSA|{self.code}|{control_id}\r".encode() + FS + CR)


@pytest.fixture
def sender_listener() -> Iterator[SenderListener]:
    server = socket.create_server(("127.0.0.1", 0))
    peer = SenderListener(port=server.getsockname()[1], _server=server)
    thread = threading.Thread(target=peer.serve, daemon=True)
    thread.start()
    yield peer
    server.close()
    thread.join(5)


def _store(engine: Engine, control_id: str, app_ack: str = "AL") -> int:
    return (
        InboxRepository(engine)
        .store(
            NewMessage(
                sending_application="MOLPATH_LIS",
                sending_facility="EXAMPLE_LAB",
                control_id=control_id,
                message_type="ORU^R01^ORU_R01",
                version="2.5.1",
                charset="utf-8",
                accept_ack_type="AL",
                application_ack_type=app_ack,
                raw=make_oru(control_id, accept_ack="AL", app_ack=app_ack),
                received_at=utcnow(),
                remote_addr="127.0.0.1",
                status="received",
                last_error=None,
                ack=b"MSH|...",
            )
        )
        .id
    )


def _worker(engine: Engine, **settings: object) -> Worker:
    return Worker(
        InboxRepository(engine),
        GeneticResultProcessor(),
        Hl7Settings(worker_in_process=False, **settings),  # type: ignore[arg-type]
        audit=AuditTrail(engine, source_observer="test"),
    )


def _row(engine: Engine, message_id: int) -> Hl7InboxMessage:
    with Session(engine) as session:
        row = session.get(Hl7InboxMessage, message_id)
        assert row is not None
        session.expunge(row)
    return row


def _audited(engine: Engine) -> list[tuple[str | None, str | None]]:
    with engine.connect() as conn:
        return [
            (r.event_subtype, r.control_id)
            for r in conn.execute(
                select(AuditRecord.event_subtype, AuditRecord.control_id)
                .where(AuditRecord.event_type == "hl7.application-ack")
                .order_by(AuditRecord.seq)
            )
        ]


def test_application_ack_is_sent_to_the_senders_listener(
    engine: Engine, sender_listener: SenderListener
) -> None:
    message_id = _store(engine, "AP1")
    worker = _worker(engine, application_ack_routes={SENDER: f"127.0.0.1:{sender_listener.port}"})
    assert run_hl7_jobs(engine, worker) == 2  # the message, then its application ACK
    (sent,) = sender_listener.received
    ack = parse_ack(sent)
    assert (ack.code, ack.acked_control_id) == ("AA", "AP1")
    assert (ack.msh(3), ack.msh(5), ack.msh(6)) == ("ONCOCDS", "MOLPATH_LIS", "EXAMPLE_LAB")
    row = _row(engine, message_id)
    assert (row.status, row.application_ack_status, row.application_ack_attempts) == (
        "processed",
        "sent",
        1,
    )
    assert _audited(engine) == [("sent", "AP1")]
    assert run_hl7_jobs(engine, worker) == 0  # sent once


def test_without_a_route_the_ack_is_kept_as_no_route(engine: Engine) -> None:
    message_id = _store(engine, "AP2")
    assert run_hl7_jobs(engine, _worker(engine)) == 1
    meta = message_metadata(_row(engine, message_id))
    assert (meta["applicationAckBuilt"], meta["applicationAckStatus"]) == (True, "no-route")
    assert meta["applicationAckDestination"] is None


def test_no_ack_when_msh16_does_not_ask(engine: Engine) -> None:
    message_id = _store(engine, "AP3", app_ack="ER")  # errors only; this one succeeds
    assert (
        run_hl7_jobs(engine, _worker(engine, application_ack_routes={SENDER: "127.0.0.1:9"})) == 1
    )
    row = _row(engine, message_id)
    assert (row.application_ack, row.application_ack_status) == (None, None)


def test_unreachable_listener_is_retried_with_backoff_then_failed(
    engine: Engine, sender_listener: SenderListener
) -> None:
    message_id = _store(engine, "AP4")
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    worker = _worker(
        engine, application_ack_routes={SENDER: down}, max_attempts=2, retry_base_seconds=60
    )
    assert run_hl7_jobs(engine, worker) == 2
    row = _row(engine, message_id)
    assert (row.application_ack_status, row.application_ack_attempts) == ("pending", 1)
    assert row.application_ack_next_at is not None
    assert row.application_ack_next_at > utcnow()  # backoff: not due yet
    assert row.application_ack_error is not None
    assert run_hl7_jobs(engine, worker) == 0
    with engine.begin() as conn:  # time passes
        conn.execute(update(Hl7InboxMessage).values(application_ack_next_at=utcnow()))
    assert run_hl7_jobs(engine, worker) == 1
    row = _row(engine, message_id)
    assert (row.application_ack_status, row.application_ack_attempts) == ("failed", 2)
    assert _audited(engine) == [("retry", "AP4"), ("failed", "AP4")]


def test_negative_answer_is_not_taken_as_delivered(
    engine: Engine, sender_listener: SenderListener
) -> None:
    sender_listener.code = "AR"
    message_id = _store(engine, "AP5")
    worker = _worker(engine, application_ack_routes={SENDER: f"127.0.0.1:{sender_listener.port}"})
    run_hl7_jobs(engine, worker)
    row = _row(engine, message_id)
    assert row.application_ack_status == "pending"
    assert row.application_ack_error is not None
    assert "AR" in row.application_ack_error


def test_routes_are_validated() -> None:
    with pytest.raises(ValueError, match="host:port"):
        Hl7Settings(application_ack_routes={SENDER: "no-port"})
    with pytest.raises(ValueError, match="host:port"):
        Hl7Settings(application_ack_routes={"no-separator": "127.0.0.1:2576"})
