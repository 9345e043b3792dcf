"""The job system (issue 17): in-process executor throughput and the latency enqueue adds.

1. **Throughput**: N no-op jobs committed in batches, then run by the in-process executor
   (2 threads, as ``make run``), against the same no-op called N times in a bare loop and
   submitted N times to a bare 2-thread ``ThreadPoolExecutor``, in the same run. The job path
   pays per job: a claim transaction (conditional UPDATE), the outcome transaction, and a poll
   of the database; the baselines pay none of that, so the ratio is the cost of durability.
2. **Enqueue latency**: a request-like transaction (insert one ``jwt_replay`` row, as every
   CDS Hooks call does, and commit) with and without ``enqueue`` of one job in it, p50/p95
   over alternating runs, with the executor running (the commit wakes it).

SQLite in a temp dir, and PostgreSQL when ONCOCDS_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from cds_service.db import migrate
from cds_service.db.base import utcnow
from cds_service.db.engine import make_engine
from cds_service.db.session import make_sessionmaker
from cds_service.db.testing import temporary_postgres_database
from cds_service.jobs import JobContext, enqueue, job_kind
from cds_service.jobs.executor import install_notifier
from cds_service.jobs.inprocess import InProcessExecutor
from cds_service.models.jobs import BackgroundJob
from cds_service.models.security import JwtReplay
from cds_service.settings import Settings

N_JOBS = 2000
N_LATENCY = 400


@job_kind("bench.noop", queue="default", max_attempts=1, time_limit_s=60)
def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    return None


def _noop_plain(payload: dict[str, Any]) -> None:
    return None


def _throughput(url: str, label: str) -> None:
    settings = Settings(database_url=url, jobs={"threads": 2, "poll_seconds": 0.05})
    engine = make_engine(url, pool_size=8)
    factory = make_sessionmaker(engine)
    for start in range(0, N_JOBS, 200):
        with factory.begin() as session:
            for n in range(start, start + 200):
                enqueue(session, kind="bench.noop", key=f"bench:{label}:{n}", payload={"n": n})
    executor = InProcessExecutor(settings, factory, schedule=False)
    started = time.perf_counter()
    executor.start()
    while True:
        with factory() as session:
            done = session.scalar(select(func.count()).where(BackgroundJob.status == "succeeded"))
        if done == N_JOBS:
            break
        time.sleep(0.01)
    jobs_s = N_JOBS / (time.perf_counter() - started)
    executor.stop()
    engine.dispose()

    started = time.perf_counter()
    for n in range(N_JOBS):
        _noop_plain({"n": n})
    loop_s = N_JOBS / (time.perf_counter() - started)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(_noop_plain, {"n": n}) for n in range(N_JOBS)]:
            future.result()
    pool_s = N_JOBS / (time.perf_counter() - started)
    print(
        f"{label}: in-process executor {jobs_s:,.0f} jobs/s; bare loop {loop_s:,.0f} calls/s "
        f"(ratio {jobs_s / loop_s:.2e}); bare 2-thread pool {pool_s:,.0f} submits/s "
        f"(ratio {jobs_s / pool_s:.2e})"
    )


def _latency(url: str, label: str) -> None:
    settings = Settings(database_url=url, jobs={"threads": 2, "poll_seconds": 1.0})
    engine = make_engine(url, pool_size=8)
    factory = make_sessionmaker(engine)
    notifier = install_notifier(factory)
    executor = InProcessExecutor(settings, factory, schedule=False)
    notifier.executor = executor
    executor.start()
    with_job: list[float] = []
    without: list[float] = []
    for n in range(N_LATENCY * 2):
        enqueueing = n % 2 == 0
        now = utcnow()
        key = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        started = time.perf_counter()
        with factory.begin() as session:
            session.add(JwtReplay(key_hash=key, expires_at=now + timedelta(hours=1), seen_at=now))
            if enqueueing:
                enqueue(session, kind="bench.noop", key=f"lat:{label}:{n}", payload={"n": n})
        elapsed = (time.perf_counter() - started) * 1000
        (with_job if enqueueing else without).append(elapsed)
    executor.stop()
    engine.dispose()

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1]

    p50w, p95w, p50b, p95b = (
        pct(with_job, 50),
        pct(with_job, 95),
        pct(without, 50),
        pct(without, 95),
    )
    print(
        f"{label}: request transaction with enqueue p50 {p50w:.2f} ms / p95 {p95w:.2f} ms; "
        f"without p50 {p50b:.2f} ms / p95 {p95b:.2f} ms; added p50 {p50w - p50b:+.2f} ms, "
        f"p95 {p95w - p95b:+.2f} ms (ratio p95 {p95w / p95b:.2f})"
    )


def _run(url: str, label: str) -> None:
    migrate.upgrade(url, "head")
    _throughput(url, label)
    _latency(url, label)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite")
    server = os.environ.get("ONCOCDS_TEST_DATABASE_URL")
    if server:
        with temporary_postgres_database(server, prefix="oncocds_bench") as url:
            _run(url, "postgresql")
    else:
        print("postgresql: skipped (set ONCOCDS_TEST_DATABASE_URL)")
