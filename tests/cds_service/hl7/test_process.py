"""``oncocds mllp`` as its own process (exact ONCOCDS_MLLP_HOST/PORT variables), with the
in-process job executor on the ``hl7`` queue: a message sent by python-hl7's ``mllp_send`` ends
up processed, SIGTERM stops the process cleanly, and messages ACKed by a listener that was then
SIGKILLed are processed when it starts again (their jobs committed with them)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, select

from cds_service.models.hl7 import Hl7InboxMessage
from tests.hl7_support import MllpClient, data_file, make_oru, mllp_env, start_mllp

BIN = Path(sys.executable).parent


def test_listener_process_with_worker(sqlite_url: str, tmp_path: Path) -> None:
    env, port = mllp_env(sqlite_url, ONCOCDS_HL7__WORKER_POLL_SECONDS="0.2")
    log = tmp_path / "listener.log"
    process = start_mllp(env, log, port)
    try:
        message = tmp_path / "m.hl7"
        message.write_bytes(data_file("oru_r01_braf_pik3ca.hl7").replace(b"\r", b"\n"))
        sent = subprocess.run(
            [str(BIN / "mllp_send"), "--loose", "-p", str(port), "-f", str(message), "127.0.0.1"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert b"MSA|AA|LAB0000003" in sent.stdout
        engine = create_engine(sqlite_url)
        status = None
        deadline = time.monotonic() + 60
        while status != "processed" and time.monotonic() < deadline:
            time.sleep(0.1)
            with engine.connect() as conn:
                status = conn.execute(select(Hl7InboxMessage.status)).scalar_one_or_none()
        with engine.connect() as conn:
            result = conn.execute(select(Hl7InboxMessage.result)).scalar_one()
        engine.dispose()
        assert status == "processed"
        assert [v["label"] for v in result["variants"]] == ["BRAF V600E", "PIK3CA H1047R"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert "MRN12345" not in log.read_text()
        assert "TESTPATIENT" not in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_acked_messages_of_a_killed_listener_are_processed_after_restart(
    sqlite_url: str, tmp_path: Path
) -> None:
    # First life: nothing processes, so every ACKed message is still waiting at the kill.
    env, port = mllp_env(sqlite_url, ONCOCDS_HL7__WORKER_IN_PROCESS="false")
    log = tmp_path / "listener.log"
    process = start_mllp(env, log, port)
    engine = create_engine(sqlite_url)
    try:
        client = MllpClient("127.0.0.1", port, 30)
        ids = [f"KR{i:03d}" for i in range(5)]
        for control_id in ids:
            assert client.request(make_oru(control_id)).code == "AA"
        client.close()
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        with engine.connect() as conn:
            assert set(conn.execute(select(Hl7InboxMessage.status)).scalars()) == {"received"}
        process = start_mllp({**env, "ONCOCDS_HL7__WORKER_IN_PROCESS": "true"}, log, port)
        deadline = time.monotonic() + 120  # a deadline on progress, not a timing assertion
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                statuses = dict(
                    conn.execute(select(Hl7InboxMessage.control_id, Hl7InboxMessage.status)).all()
                )
            if set(statuses.values()) == {"processed"}:
                break
            time.sleep(0.2)
        assert statuses == dict.fromkeys(ids, "processed")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        engine.dispose()
        if process.poll() is None:
            process.kill()
            process.wait(30)
