"""Jobs on Celery + RabbitMQ (issue 17), against baselines measured in the same run.

1. **Throughput**: N no-op jobs committed to the outbox, published by the relay (publisher
   confirms, ``published_at`` marked) and run by one ``oncocds``-app Celery worker process
   (prefork, 2 children) through ``oncocds.run_job`` (claim, run, record) — against the same
   worker running a bare Celery no-op task sent N times on the same broker (confirms too).
   Both handlers append one line to a file, so the end is observed the same way.
2. **HL7 end to end** (MLLP frame → ACK → job → processed analysis stored): M messages through
   ``oncocds mllp`` in jobs mode, with 1 and then 2 worker processes; messages/s and the ratio.
3. **Enqueue latency on a request**: a request-like transaction (one ``jwt_replay`` insert, as
   every CDS Hooks call does, then commit) with and without ``enqueue`` of one job, while the
   Celery executor's relay thread publishes what the commits wake it for; p50/p95, single client.

Needs ONCOCDS_TEST_DATABASE_URL (PostgreSQL: a temporary database is created) and RabbitMQ
(ONCOCDS_TEST_BROKER_URL, default guest/guest on 127.0.0.1:5672).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from cds_service.jobs import JobContext, job_kind

REPO = Path(__file__).resolve().parent.parent
BROKER = os.environ.get("ONCOCDS_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
N_JOBS = 300
N_HL7 = 20
N_LATENCY = 300
LOG_ENV = "ONCOCDS_BENCH_CELERY_LOG"


def _touch() -> None:
    with Path(os.environ[LOG_ENV]).open("a", encoding="utf-8") as handle:
        handle.write("x\n")


@job_kind("bench.celery-noop", queue="default", max_attempts=1, time_limit_s=60)
def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    _touch()


def run_worker() -> None:
    """The worker process: the oncocds app plus a bare no-op task on the same queues."""
    from cds_service.jobs.celery_app import create_celery_app, declare_queues, queue_name
    from cds_service.settings import Settings

    settings = Settings()
    app = create_celery_app(settings)

    @app.task(name="bench.bare_noop", shared=False, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator,unused-ignore]
    def bare_noop() -> None:
        _touch()

    declare_queues(app)
    app.worker_main(
        [
            "worker",
            f"--queues={queue_name(settings, 'default')}",
            "--concurrency=2",
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
    )


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def _wait_lines(path: Path, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _lines(path) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_lines(path)} of {count} runs")
        time.sleep(0.02)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _consumers(prefix: str, queue: str) -> int:
    from kombu import Connection

    with Connection(BROKER, connect_timeout=5) as conn:
        channel: Any = conn.channel()
        try:
            return int(channel.queue_declare(f"{prefix}{queue}", passive=True)[2])
        except Exception:  # noqa: BLE001 - not declared yet
            return 0


def _wait_consumers(prefix: str, queue: str, count: int) -> None:
    deadline = time.monotonic() + 120
    while _consumers(prefix, queue) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("worker did not start")
        time.sleep(0.1)


def _delete_queues(prefix: str) -> None:
    from kombu import Connection

    with Connection(BROKER, connect_timeout=5) as conn:
        channel: Any = conn.channel()
        for queue in ("hl7", "writeback", "imaging", "llm", "maintenance", "default"):
            with contextlib.suppress(Exception):
                channel.queue_delete(f"{prefix}{queue}")


def _throughput(url: str, env: dict[str, str], settings: Any) -> None:
    from sqlalchemy.orm import sessionmaker

    from cds_service.db.engine import make_engine
    from cds_service.jobs import enqueue
    from cds_service.jobs.celery_app import create_celery_app, queue_name
    from cds_service.jobs.relay import CeleryPublisher, Relay

    log = Path(env[LOG_ENV])
    worker = _spawn([sys.executable, "-c", "import bench.bench_celery as b; b.run_worker()"], env)
    engine = make_engine(url, pool_size=4)
    try:
        _wait_consumers(settings.jobs.queue_prefix, "default", 1)
        # Bare Celery: N sends with confirms, the same worker runs them.
        app = create_celery_app(settings)
        start = time.perf_counter()
        with app.connection_for_write() as conn:
            producer = app.amqp.Producer(conn.default_channel)
            for _i in range(N_JOBS):
                app.send_task(
                    "bench.bare_noop", queue=queue_name(settings, "default"), producer=producer
                )
        _wait_lines(log, N_JOBS)
        bare = N_JOBS / (time.perf_counter() - start)
        # Outbox + relay + run_job: commit in batches of 50, the relay publishes, workers run.
        sessions = sessionmaker(engine)
        publisher = CeleryPublisher(settings)
        relay = Relay(sessions, publisher, batch=200)
        stop, wake = threading.Event(), threading.Event()
        thread = threading.Thread(
            target=relay.run, args=(stop, wake), kwargs={"poll_seconds": 0.05}
        )
        thread.start()
        start = time.perf_counter()
        tag = uuid.uuid4().hex[:8]
        for batch in range(N_JOBS // 50):
            with sessions() as session:
                for n in range(50):
                    enqueue(
                        session, kind="bench.celery-noop", key=f"b:{tag}:{batch}:{n}", payload={}
                    )
                session.commit()
            wake.set()
        _wait_lines(log, 2 * N_JOBS)
        jobs = N_JOBS / (time.perf_counter() - start)
        stop.set()
        wake.set()
        thread.join(30)
        print(f"  throughput, {N_JOBS} no-op jobs, 1 worker (2 children):")
        print(f"    outbox + relay + oncocds.run_job : {jobs:8.0f} jobs/s")
        print(f"    bare Celery no-op (same broker)  : {bare:8.0f} tasks/s")
        print(f"    ratio                            : {jobs / bare:8.2f}")
    finally:
        _stop(worker)
        engine.dispose()


def _hl7(url: str, env: dict[str, str], settings: Any) -> None:
    from sqlalchemy import func, select

    from cds_service.db.engine import make_engine
    from cds_service.models.hl7 import Hl7InboxMessage
    from integrations.hl7v2.mllp import frame
    from tests.hl7_support import make_oru

    engine = make_engine(url, pool_size=2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    oncocds = [
        sys.executable,
        "-c",
        "import sys; from cds_service.cli import main; sys.exit(main(sys.argv[1:]))",
    ]
    listener = _spawn([*oncocds, "mllp"], {**env, "ONCOCDS_MLLP_PORT": str(port)})
    workers: list[subprocess.Popen[bytes]] = []
    rates: dict[int, float] = {}

    def processed() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(Hl7InboxMessage)
                    .where(Hl7InboxMessage.status == "processed")
                ).scalar_one()
            )

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        for count in (1, 2):
            while len(workers) < count:
                workers.append(
                    _spawn([*oncocds, "worker", "--queues", "hl7", "--concurrency", "2"], env)
                )
            _wait_consumers(settings.jobs.queue_prefix, "hl7", count)
            # Warm the pool children (knowledge base load) before timing.
            base = processed()
            _send(port, [f"W{count}-{i}" for i in range(4 * count)], frame, make_oru)
            while processed() < base + 4 * count:
                time.sleep(0.05)
            base = processed()
            start = time.perf_counter()
            _send(port, [f"H{count}-{i:04d}" for i in range(N_HL7)], frame, make_oru)
            while processed() < base + N_HL7:
                time.sleep(0.02)
            rates[count] = N_HL7 / (time.perf_counter() - start)
        print(f"  HL7 end to end (MLLP → processed analysis), {N_HL7} ORU^R01, 2 children each:")
        print(f"    1 worker process : {rates[1]:8.1f} messages/s")
        print(f"    2 worker processes: {rates[2]:8.1f} messages/s")
        print(
            f"    ratio 2/1        : {rates[2] / rates[1]:8.2f}"
            "  (2 shared cores: workers, listener and DB compete)"
        )
    finally:
        for process in [listener, *workers]:
            _stop(process)
        engine.dispose()


def _send(port: int, ids: list[str], frame: Any, make_oru: Any) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        buffer = b""
        for control_id in ids:
            sock.sendall(frame(make_oru(control_id)))
            while b"\x1c\r" not in buffer:
                buffer += sock.recv(65536)
            _, buffer = buffer.split(b"\x1c\r", 1)


def _latency(url: str, settings: Any) -> None:
    from sqlalchemy.orm import sessionmaker

    from cds_service.db.base import utcnow
    from cds_service.db.engine import make_engine
    from cds_service.db.session import make_sessionmaker
    from cds_service.jobs import enqueue
    from cds_service.jobs.executor import install_notifier
    from cds_service.jobs.relay import CeleryExecutor
    from cds_service.models.security import JwtReplay

    engine = make_engine(url, pool_size=4)
    sessions: sessionmaker[Any] = make_sessionmaker(engine)
    notifier = install_notifier(sessions)
    executor = CeleryExecutor(settings, sessions)
    notifier.executor = executor
    executor.start()
    timings: dict[bool, list[float]] = {False: [], True: []}
    try:
        for i in range(2 * N_LATENCY):
            with_job = bool(i % 2)
            jti = hashlib.sha256(f"{uuid.uuid4()}".encode()).hexdigest()
            start = time.perf_counter()
            with sessions() as session:
                now = utcnow()
                session.add(
                    JwtReplay(key_hash=jti, expires_at=now + timedelta(minutes=5), seen_at=now)
                )
                if with_job:
                    enqueue(session, kind="bench.celery-noop", key=f"lat:{jti}", payload={})
                session.commit()
            timings[with_job].append((time.perf_counter() - start) * 1000)
    finally:
        executor.stop()
        engine.dispose()

    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1]

    base95, job95 = p(timings[False], 95), p(timings[True], 95)
    print(f"  request transaction (jwt_replay insert + commit), {N_LATENCY} each, relay running:")
    print(f"    without enqueue: p50 {p(timings[False], 50):6.2f} ms  p95 {base95:6.2f} ms")
    print(f"    with enqueue   : p50 {p(timings[True], 50):6.2f} ms  p95 {job95:6.2f} ms")
    print(f"    added p95      : {job95 - base95:6.2f} ms (issue target <= 2 ms)")


def main() -> None:
    server_url = os.environ.get("ONCOCDS_TEST_DATABASE_URL")
    if not server_url:
        print("celery: skipped (set ONCOCDS_TEST_DATABASE_URL: the scale-out runs on PostgreSQL)")
        return
    from cds_service.db import migrate
    from cds_service.db.testing import temporary_postgres_database
    from cds_service.settings import Settings

    prefix = f"oncocds-bench-{uuid.uuid4().hex[:8]}."
    with (
        temporary_postgres_database(server_url, prefix="oncocds_bench") as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        migrate.upgrade(url)
        env = {
            **os.environ,
            "ONCOCDS_DATABASE_URL": url,
            "ONCOCDS_JOBS__BROKER_URL": BROKER,
            "ONCOCDS_JOBS__QUEUE_PREFIX": prefix,
            "ONCOCDS_JOBS__EXTRA_MODULES": '["bench.bench_celery"]',
            "ONCOCDS_LOG_LEVEL": "WARNING",
            LOG_ENV: str(Path(tmp) / "runs.log"),
        }
        os.environ[LOG_ENV] = env[LOG_ENV]
        settings = Settings(
            database_url=url,
            jobs={
                "broker_url": BROKER,
                "queue_prefix": prefix,
                "extra_modules": ("bench.bench_celery",),
            },
        )
        only = os.environ.get("ONCOCDS_BENCH_CELERY_ONLY")  # throughput | latency | hl7
        try:
            if only in (None, "throughput"):
                _throughput(url, env, settings)
            if only in (None, "latency"):
                _latency(url, settings)
            if only in (None, "hl7"):
                _hl7(url, env, settings)
        finally:
            _delete_queues(prefix)
