"""Durability under SIGKILL: stream 10,000 messages to a real ``oncocds mllp`` process on
PostgreSQL, kill it at random points several times and restart it. Every message that was
ACKed must be in the inbox exactly once, and resending the un-ACKed ones completes the set."""

from __future__ import annotations

import os
import random
import signal
import socket
from collections import deque
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cds_service.db.engine import make_engine
from cds_service.models.hl7 import Hl7InboxMessage
from tests.hl7_support import CR, FS, VT, frame, make_oru, mllp_env, parse_ack, start_mllp

TOTAL = 10_000
WINDOW = 32
KILLS = 4


class _Stream:
    """A pipelined sender: up to WINDOW messages in flight on one connection."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def acks(self) -> list[bytes]:
        """Complete ACK blocks available after one recv; raises ConnectionError at EOF."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buffer += chunk
        blocks = []
        while (end := self.buffer.find(FS + CR)) >= 0:
            start = self.buffer.find(VT)
            blocks.append(self.buffer[start + 1 : end])
            self.buffer = self.buffer[end + 2 :]
        return blocks


@pytest.mark.slow
@pytest.mark.db
def test_sigkill_at_random_points_loses_no_acked_message(  # noqa: PLR0912 - one scenario
    pg_url: str, tmp_path: Path
) -> None:
    rng = random.Random(int(os.environ.get("ONCOCDS_KILL_SEED", "5")))
    env, port = mllp_env(
        pg_url, ONCOCDS_HL7__WORKER_IN_PROCESS="false", ONCOCDS_LOG_LEVEL="WARNING"
    )
    log = tmp_path / "listener.log"
    ids = [f"K{i:05d}" for i in range(TOTAL)]
    payloads = {control_id: make_oru(control_id) for control_id in ids}
    kill_after = sorted(rng.sample(range(300, TOTAL - 300), KILLS))
    engine = make_engine(pg_url, pool_size=2)
    acked: list[str] = []
    resend: deque[str] = deque()
    next_new = 0
    kills = 0
    process = start_mllp(env, log, port)
    try:
        while len(acked) < TOTAL:
            stream = _Stream(port)
            in_flight: deque[str] = deque()
            killed = False
            try:
                while len(acked) < TOTAL:
                    while len(in_flight) < WINDOW and (resend or next_new < TOTAL):
                        if resend:
                            control_id = resend.popleft()
                        else:
                            control_id = ids[next_new]
                            next_new += 1
                        stream.sock.sendall(frame(payloads[control_id]))
                        in_flight.append(control_id)
                    for block in stream.acks():
                        ack = parse_ack(block)
                        expected = in_flight.popleft()
                        # In order, positive, and for the message it answers.
                        assert (ack.code, ack.acked_control_id) == ("AA", expected)
                        acked.append(expected)
                    if kills < KILLS and len(acked) >= kill_after[kills]:
                        process.send_signal(signal.SIGKILL)
                        process.wait(30)
                        kills += 1
                        killed = True
                        # ACKs the dead process had already written still count as ACKed.
                        while True:
                            for block in stream.acks():
                                ack = parse_ack(block)
                                assert ack.acked_control_id == in_flight[0]
                                acked.append(in_flight.popleft())
            except (ConnectionError, TimeoutError):
                assert killed, f"connection lost without a kill: {log.read_text()[-2000:]}"
            finally:
                stream.sock.close()
            if killed:
                _assert_acked_stored_once(engine, acked)
                resend.extend(in_flight)  # the sender's retry of what was never ACKed
                process = start_mllp(env, log, port)
        assert kills == KILLS
        with engine.connect() as conn:
            stored = list(conn.execute(select(Hl7InboxMessage.control_id)).scalars())
        assert len(stored) == TOTAL
        assert set(stored) == set(ids)
        assert sorted(acked) == sorted(ids)
        # One more kill right after the last ACK (its audit queue dies with it), then a restart:
        # the start-up sweep completes the trail from the inbox rows.
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        process = start_mllp(env, log, port)
        _assert_every_row_audited_once(engine)
    finally:
        process.kill()
        process.wait(30)
        engine.dispose()


def _assert_acked_stored_once(engine: object, acked: list[str]) -> None:
    from sqlalchemy import Engine

    assert isinstance(engine, Engine)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Hl7InboxMessage.control_id, func.count()).group_by(Hl7InboxMessage.control_id)
        ).all()
    counts = dict(rows)
    missing = [c for c in acked if c not in counts]
    assert not missing, f"{len(missing)} ACKed messages missing after SIGKILL"
    assert max(counts.values()) == 1


def _assert_every_row_audited_once(engine: object) -> None:
    from sqlalchemy import Engine

    from cds_service.models.audit import AuditRecord

    assert isinstance(engine, Engine)
    with engine.connect() as conn:
        row_ids = set(conn.execute(select(Hl7InboxMessage.id)).scalars())
        unaudited = conn.execute(
            select(func.count()).where(Hl7InboxMessage.audited_at.is_(None))
        ).scalar_one()
        records = conn.execute(
            select(AuditRecord.event_subtype, AuditRecord.details).where(
                AuditRecord.event_type == "hl7.received"
            )
        ).all()
    assert unaudited == 0
    first = [d["inboxId"] for subtype, d in records if subtype != "duplicate"]
    assert sorted(first) == sorted(row_ids), "every inbox row has exactly one hl7.received"
    assert len(first) == len(set(first))
    recovered = [d for subtype, d in records if subtype == "recovered"]
    assert recovered, "the kills lost queued records, and the sweep wrote them"
    assert all(d["recovered"] is True for d in recovered)
