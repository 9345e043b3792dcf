"""Helpers for the HL7 tests: message factory, an independent MLLP client, ACK reading, and a
listener running on a real socket in a background event loop.

The client and the ACK reader are written here from the MLLP/HL7 rules, not with the code under
test, so that they check it independently.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from cds_service.audit import AuditTrail
from cds_service.hl7.audit import AuditSink
from cds_service.hl7.jobs import provide_worker
from cds_service.hl7.listener import MllpListener
from cds_service.hl7.repository import InboxRepository
from cds_service.hl7.store import InboxStore, store_for
from cds_service.hl7.worker import Worker
from cds_service.jobs import ResourcePool
from cds_service.models.jobs import BackgroundJob
from cds_service.settings import Hl7Settings, Settings
from tests.support.jobs import run_due
from tests.support.processes import free_port, wait_for_port

DATA = Path(__file__).resolve().parent / "data" / "hl7"
VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


def data_file(name: str) -> bytes:
    return (DATA / name).read_bytes()


def make_oru(
    control_id: str,
    *,
    sender: str = "MOLPATH_LIS",
    facility: str = "EXAMPLE_LAB",
    message_type: str = "ORU^R01^ORU_R01",
    accept_ack: str = "",
    app_ack: str = "",
    charset: str = "UNICODE UTF-8",
    patient_name: str = "TESTPATIENT^ONE",
    patient_id: str | None = None,
    encoding: str = "utf-8",
    template: str = "oru_r01_braf_v600e.hl7",
) -> bytes:
    """The BRAF V600E test message with its MSH (and PID-5, PID-3.1) fields replaced."""
    segments = data_file(template).decode("utf-8").rstrip("\r").split("\r")
    msh = segments[0].split("|")
    msh[2], msh[3], msh[8], msh[9] = sender, facility, message_type, control_id
    while len(msh) < 18:
        msh.append("")
    msh[14], msh[15], msh[17] = accept_ack, app_ack, charset
    segments[0] = "|".join(msh)
    pid = segments[1].split("|")
    pid[5] = patient_name
    if patient_id is not None:
        pid[3] = "^".join([patient_id, *pid[3].split("^")[1:]])
    segments[1] = "|".join(pid)
    return ("\r".join(segments) + "\r").encode(encoding)


def frame(payload: bytes) -> bytes:
    return VT + payload + FS + CR


@dataclass
class Ack:
    raw: bytes
    segments: dict[str, list[str]]

    @property
    def code(self) -> str:
        return self.segments["MSA"][1]

    @property
    def acked_control_id(self) -> str:
        return self.segments["MSA"][2] if len(self.segments["MSA"]) > 2 else ""

    def msh(self, n: int) -> str:
        fields = self.segments["MSH"]
        return fields[n - 1] if n - 1 < len(fields) else ""

    @property
    def err(self) -> list[str] | None:
        return self.segments.get("ERR")


def parse_ack(raw: bytes) -> Ack:
    text = raw.decode("utf-8", errors="replace")
    segments: dict[str, list[str]] = {}
    for segment in text.split("\r"):
        if segment:
            fields = segment.split("|")
            segments.setdefault(fields[0], fields)
    return Ack(raw, segments)


class MllpClient:
    """A blocking MLLP client over one persistent TCP connection."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, payload: bytes) -> None:
        self.sock.sendall(frame(payload))

    def read_ack(self) -> Ack | None:
        """The next ACK, or None when the server closed the connection."""
        while True:
            start = self._buffer.find(VT)
            end = self._buffer.find(FS + CR, start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0:
                block = self._buffer[start + 1 : end]
                self._buffer = self._buffer[end + 2 :]
                return parse_ack(block)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk

    def request(self, payload: bytes) -> Ack:
        self.send(payload)
        ack = self.read_ack()
        assert ack is not None, "connection closed without an ACK"
        return ack

    def is_closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


@dataclass
class RunningListener:
    host: str
    port: int
    listener: MllpListener
    sink: AuditSink
    repository: InboxRepository
    clients: list[MllpClient] = field(default_factory=list)

    def client(self, timeout: float = 30.0) -> MllpClient:
        """A new connection, closed at teardown if the test does not close it."""
        client = MllpClient(self.host, self.port, timeout)
        self.clients.append(client)
        return client


@contextmanager
def running_listener(
    engine: Engine, settings: Hl7Settings | None = None, *, store: InboxStore | None = None
) -> Iterator[RunningListener]:
    """An :class:`MllpListener` on 127.0.0.1:<free port>, its loop in a background thread."""
    settings = settings or Hl7Settings(worker_in_process=False)
    repository = InboxRepository(engine)
    sink = AuditSink(AuditTrail(engine, source_observer="test"))
    # PostgreSQL: the listener's group-commit store, as `oncocds mllp` runs it.
    listener = MllpListener(
        settings, repository, sink, store=store or store_for(engine, repository)
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    host, port = asyncio.run_coroutine_threadsafe(listener.start("127.0.0.1", 0), loop).result(10)
    running = RunningListener(host, port, listener, sink, repository)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        sink.close()


def run_hl7_jobs(
    engine: Engine,
    worker: Worker,
    *,
    now: datetime | None = None,
    limit: int = 10,
    worker_id: str = "test-hl7",
) -> int:
    """One round of what the in-process executor on the ``hl7`` queue does, in this thread:
    claim up to ``limit`` due jobs (the job system's claim, at ``now``), run each on ``worker``
    and record its outcome, then the application ACK sweep (the ``hl7.application-acks``
    job's handler). Returns the jobs run plus the application ACK deliveries attempted (after
    each message, and by the sweep): 0 when nothing was due."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    resources = ResourcePool(settings)
    provide_worker(resources, worker)
    ran = run_due(
        sessions,
        settings,
        queues=("hl7",),
        limit=limit,
        now=now,
        resources=resources,
        worker_id=worker_id,
    )
    acks = 0
    if ran:
        with engine.connect() as conn:
            results = conn.execute(
                select(BackgroundJob.result).where(BackgroundJob.id.in_([r.job_id for r in ran]))
            ).scalars()
            acks = sum(int((r or {}).get("applicationAcks", 0)) for r in results)
    return len(ran) + acks + worker.deliver_application_acks()


def mllp_env(database_url: str, **settings: str) -> tuple[dict[str, str], int]:
    """The environment of an ``oncocds mllp`` process on ``database_url`` listening on a free
    port of 127.0.0.1, with ``settings`` (``ONCOCDS_*`` names) on top; and that port."""
    port = free_port()
    env = {
        **os.environ,
        "ONCOCDS_DATABASE_URL": database_url,
        "ONCOCDS_MLLP_HOST": "127.0.0.1",
        "ONCOCDS_MLLP_PORT": str(port),
        **settings,
    }
    return env, port


def start_mllp(env: dict[str, str], log: Path, port: int) -> subprocess.Popen[bytes]:
    """``oncocds mllp`` as its own process (output appended to ``log``), once it listens on
    ``port`` (``env`` sets ONCOCDS_MLLP_PORT to it)."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "oncocds"), "mllp"],
            env=env,
            stdout=sink,
            stderr=sink,
        )
    try:
        wait_for_port(port, process, log, timeout=60)
    except AssertionError:
        process.kill()
        process.wait(30)
        raise
    return process
