"""MLLP ingestion: messages/s and ACK latency (p50/p99) of ``oncocds mllp`` with the ACK sent
after the PostgreSQL commit, beside two baselines measured in the same run:

- **bare**: an asyncio MLLP server that ACKs without storing anything (the ceiling);
- **bare + PG**: the same server with one autocommit INSERT per message (psycopg, in a thread)
  before the ACK: the least an ACK-after-commit listener must do, under the same disk;
- **hl7apy**: hl7apy's ``MLLPServer`` as shipped, which answers one message per TCP connection
  and closes it, so its client opens a connection per message (measured as it is).

Each server runs in its own process; the client is an asyncio sender in this process that waits
for each ACK before sending the next message (the usual MLLP sender), over 1 connection and over
8 concurrent connections. Needs ONCOCDS_TEST_DATABASE_URL (a temporary database is created).
The OncoCDS listener runs with its in-process worker off (processing is not on the ACK path; the
worker would only compete for the same two CPU cores here).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cds_service.db import migrate
from cds_service.db.testing import temporary_postgres_database

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = (ROOT / "tests" / "data" / "hl7" / "oru_r01_braf_v600e.hl7").read_bytes()
ONCOCDS = str(Path(sys.executable).parent / "oncocds")
VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
PER_CONNECTION_1 = 2000
PER_CONNECTION_8 = 400
WINDOW = 32


def message(control_id: str) -> bytes:
    return TEMPLATE.replace(b"|LAB0000001|", f"|{control_id}|".encode(), 1)


# ---------------------------------------------------------------------- baseline servers

BARE_SERVER = r"""
import asyncio, sys
async def handle(reader, writer):
    buf = b""
    while True:
        data = await reader.read(65536)
        if not data:
            break
        buf += data
        out = []
        while True:
            end = buf.find(b"\x1c\x0d")
            if end < 0:
                break
            start = buf.find(b"\x0b")
            msg = buf[start + 1 : end]
            buf = buf[end + 2 :]
            msh = msg.split(b"\r", 1)[0].split(b"|")
            out.append(b"\x0bMSH|^~\\&|" + msh[4] + b"|" + msh[5] + b"|" + msh[2] + b"|" + msh[3]
                       + b"|20260101000000||ACK^R01^ACK|A" + msh[9] + b"|P|2.5.1\rMSA|AA|"
                       + msh[9] + b"\r\x1c\x0d")
        if out:
            writer.write(b"".join(out))
            await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""

# The same bare server, but each message is INSERTed (autocommit, one round trip) with psycopg
# in a thread before its ACK: the least any ACK-after-commit listener must do.
BARE_PG_SERVER = r"""
import asyncio, sys
import psycopg
conn = psycopg.connect(sys.argv[2], autocommit=True)
conn.execute("CREATE TABLE IF NOT EXISTS bare_inbox (id bigserial primary key, raw bytea)")
def store(msg):
    conn.execute("INSERT INTO bare_inbox (raw) VALUES (%s)", (msg,))
async def handle(reader, writer):
    buf = b""
    while True:
        data = await reader.read(65536)
        if not data:
            break
        buf += data
        while True:
            end = buf.find(b"\x1c\x0d")
            if end < 0:
                break
            start = buf.find(b"\x0b")
            msg = buf[start + 1 : end]
            buf = buf[end + 2 :]
            await asyncio.to_thread(store, msg)
            msh = msg.split(b"\r", 1)[0].split(b"|")
            writer.write(b"\x0bMSH|^~\\&|X|Y|" + msh[2] + b"|" + msh[3]
                         + b"|20260101000000||ACK^R01^ACK|A" + msh[9] + b"|P|2.5.1\rMSA|AA|"
                         + msh[9] + b"\r\x1c\x0d")
            await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""

HL7APY_SERVER = r"""
import sys
from hl7apy.mllp import AbstractHandler, MLLPServer
from hl7apy.parser import parse_message
class Handler(AbstractHandler):
    def reply(self):
        msg = parse_message(self.incoming_message, find_groups=False)
        cid = msg.msh.msh_10.value
        ack = ("MSH|^~\\&|ONCOCDS|X|MOLPATH_LIS|EXAMPLE_LAB|20260101000000||ACK^R01^ACK|A" + cid
               + "|P|2.5.1\rMSA|AA|" + cid + "\r")
        return "\x0b" + ack + "\x1c\x0d"
server = MLLPServer("127.0.0.1", int(sys.argv[1]), {"ORU^R01^ORU_R01": (Handler,)})
server.serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError("server did not start")


# ---------------------------------------------------------------------- client


@dataclass
class Result:
    messages: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _read_ack(reader: asyncio.StreamReader) -> bytes:
    block = await reader.readuntil(FS + CR)
    return block[block.find(VT) + 1 : -2]


async def _persistent(port: int, ids: list[str], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    for control_id in ids:
        started = time.perf_counter()
        writer.write(VT + message(control_id) + FS + CR)
        await writer.drain()
        ack = await _read_ack(reader)
        latencies.append(time.perf_counter() - started)
        if f"MSA|AA|{control_id}".encode() not in ack:
            raise RuntimeError("unexpected ACK")
    writer.close()
    await writer.wait_closed()


async def _pipelined(port: int, ids: list[str], latencies: list[float]) -> None:
    """Up to WINDOW messages in flight on one connection (senders that do not wait)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    sent: dict[str, float] = {}

    async def receive() -> None:
        for control_id in ids:
            ack = await _read_ack(reader)
            latencies.append(time.perf_counter() - sent[control_id])
            if f"MSA|AA|{control_id}".encode() not in ack:
                raise RuntimeError("unexpected ACK")
            window.release()

    window = asyncio.Semaphore(WINDOW)
    receiver = asyncio.create_task(receive())
    for control_id in ids:
        await window.acquire()
        sent[control_id] = time.perf_counter()
        writer.write(VT + message(control_id) + FS + CR)
        await writer.drain()
    await receiver
    writer.close()
    await writer.wait_closed()


async def _per_message(port: int, ids: list[str], latencies: list[float]) -> None:
    for control_id in ids:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(VT + message(control_id) + FS + CR)
        await writer.drain()
        ack = await _read_ack(reader)
        latencies.append(time.perf_counter() - started)
        writer.close()
        await writer.wait_closed()
        if f"MSA|AA|{control_id}".encode() not in ack:
            raise RuntimeError("unexpected ACK")


def _drive(
    port: int,
    label: str,
    connections: int,
    per: int,
    *,
    one_per_message: bool,
    pipelined: bool = False,
) -> Result:
    latencies: list[float] = []
    sender = _per_message if one_per_message else (_pipelined if pipelined else _persistent)

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                sender(port, [f"{label}{c}-{i}" for i in range(per)], latencies)
                for c in range(connections)
            )
        )
        return time.perf_counter() - started

    seconds = asyncio.run(run())
    return Result(connections * per, seconds, latencies)


def _measure(port: int, label: str, *, one_per_message: bool = False) -> dict[str, Result]:
    # hl7apy reads byte by byte and parses every message (~10 msg/s here): fewer messages.
    scale = 20 if one_per_message else 1
    # A short warm-up (connection pools, imports), not counted.
    _drive(port, f"{label}w", 1, 50 // scale, one_per_message=one_per_message)
    results = {
        "1": _drive(
            port, f"{label}a", 1, PER_CONNECTION_1 // scale, one_per_message=one_per_message
        ),
        "8": _drive(
            port, f"{label}b", 8, PER_CONNECTION_8 // scale, one_per_message=one_per_message
        ),
    }
    if not one_per_message:
        results[f"1 w{WINDOW}"] = _drive(
            port, f"{label}c", 1, PER_CONNECTION_1, one_per_message=False, pipelined=True
        )
    return results


def _serve(
    command: list[str], env: dict[str, str] | None = None, *, extra: tuple[str, ...] = ()
) -> tuple[int, subprocess.Popen[bytes]]:
    port = _free_port()
    process = subprocess.Popen(
        [*command, str(port), *extra] if env is None else command,
        env={**os.environ, **(env or {}), "ONCOCDS_MLLP_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(port, process)
    return port, process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    server_url = os.environ.get("ONCOCDS_TEST_DATABASE_URL")
    if not server_url:
        print("mllp: skipped (set ONCOCDS_TEST_DATABASE_URL: ACK after commit needs PostgreSQL)")
        return
    results: dict[str, dict[str, Result]] = {}
    commits_before = _commit_rate(server_url)
    port, bare = _serve([sys.executable, "-c", BARE_SERVER])
    try:
        results["bare asyncio (no storage)"] = _measure(port, "B")
    finally:
        _stop(bare)
    port, hl7apy_server = _serve([sys.executable, "-c", HL7APY_SERVER])
    try:
        results["hl7apy MLLPServer (1 msg/conn)"] = _measure(port, "H", one_per_message=True)
    finally:
        _stop(hl7apy_server)
    with temporary_postgres_database(server_url, prefix="oncocds_bench") as url:
        migrate.upgrade(url, "head")
        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        port, bare_pg = _serve([sys.executable, "-c", BARE_PG_SERVER], extra=(dsn,))
        try:
            results["bare asyncio + PG INSERT/commit"] = _measure(port, "P")
        finally:
            _stop(bare_pg)
        env = {
            "ONCOCDS_DATABASE_URL": url,
            "ONCOCDS_HL7__WORKER_IN_PROCESS": "false",
            "ONCOCDS_LOG_LEVEL": "WARNING",
        }
        port, oncocds = _serve([ONCOCDS, "mllp"], env)
        try:
            results["oncocds mllp (PG commit)"] = _measure(port, "O")
        finally:
            _stop(oncocds)
    bare_rates = results["bare asyncio (no storage)"]
    stored_rates = results["bare asyncio + PG INSERT/commit"]
    print(
        f"{'server':<32} {'conns':>6} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'vs bare':>8} {'vs bare+PG':>10}"
    )
    for name, by_conn in results.items():
        for conns, result in by_conn.items():
            ratio = result.rate / bare_rates[conns].rate
            stored = result.rate / stored_rates[conns].rate if conns in stored_rates else 0.0
            print(
                f"{name:<32} {conns:>6} {result.rate:>8,.0f} {result.pct(0.5):>8.2f} "
                f"{result.pct(0.99):>8.2f} {ratio:>8.2f} {stored:>10.2f}"
            )
    commits_after = _commit_rate(server_url)
    print(
        "(same run) PostgreSQL's own single-row INSERT+COMMIT rate on one connection, before / "
        f"after: {commits_before:,.0f}/s / {commits_after:,.0f}/s (the ceiling for 1 connection "
        "that waits for each ACK)"
    )
    print(
        "conns: concurrent connections, each waiting for its ACK before the next message; "
        f"'1 w{WINDOW}': one connection with up to {WINDOW} messages in flight"
    )


def _commit_rate(server_url: str) -> float:
    """The database's own commit rate, the floor under any ACK-after-commit listener."""
    from sqlalchemy import text

    from cds_service.db.engine import make_engine

    with temporary_postgres_database(server_url, prefix="oncocds_bench") as url:
        engine = make_engine(url, pre_ping=False)
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE t (i int)"))
            conn.commit()
            started = time.perf_counter()
            for i in range(1000):
                conn.execute(text("INSERT INTO t VALUES (:i)"), {"i": i})
                conn.commit()
            rate = 1000 / (time.perf_counter() - started)
        engine.dispose()
    return rate


if __name__ == "__main__":
    main()
