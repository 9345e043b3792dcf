"""The job service itself: enqueue's checks and transaction, backoff, fencing of a claim whose
lease ran out on every attempt, waking on commit, the periodic schedule, and several processes
on one database."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cds_service.db.base import utcnow
from cds_service.db.engine import make_engine
from cds_service.db.session import make_sessionmaker
from cds_service.jobs import (
    JobPayloadError,
    UnknownJobKindError,
    claim_due,
    enqueue,
    execute,
    tick_schedules,
)
from cds_service.jobs.inprocess import InProcessExecutor
from cds_service.jobs.registry import get_kind
from cds_service.jobs.service import backoff_delay
from cds_service.models.jobs import BackgroundJob, JobSchedule
from cds_service.settings import Settings
from tests.cds_service.jobs import kinds as test_kinds
from tests.cds_service.jobs import periodic_kinds
from tests.cds_service.jobs.conftest import wait_for
from tests.cds_service.jobs.kinds import runs

ROOT = Path(__file__).resolve().parents[3]


def test_backoff_doubles_per_attempt_with_equal_jitter_and_a_cap() -> None:
    spec = get_kind("test.slow_backoff")  # base 3600 s, cap 7200 s
    assert spec is not None
    # Worked out by hand: step = min(7200, 3600 * 2**(attempt-1)); delay in [step/2, step].
    assert backoff_delay(spec, 1, rng=lambda: 0.0) == 1800.0
    assert backoff_delay(spec, 1, rng=lambda: 1.0) == 3600.0
    assert backoff_delay(spec, 2, rng=lambda: 0.5) == 3600.0 + 1800.0
    assert backoff_delay(spec, 5, rng=lambda: 1.0) == 7200.0  # capped


def test_enqueue_refuses_unknown_kinds_and_bad_payloads(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session:
        with pytest.raises(UnknownJobKindError):
            enqueue(session, kind="no.such.kind", key="k", payload={})
        with pytest.raises(JobPayloadError, match="at most 16384 bytes"):
            enqueue(session, kind="test.echo", key="k", payload={"pixels": "x" * 20_000})
        with pytest.raises(JobPayloadError, match="must be JSON"):
            enqueue(session, kind="test.echo", key="k", payload={"when": object()})
        with pytest.raises(JobPayloadError, match="1-255 characters"):
            enqueue(session, kind="test.echo", key="k" * 256, payload={})


def test_enqueue_commits_with_the_callers_transaction_or_not_at_all(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_factory() as session:
        enqueue(session, kind="test.echo", key="rolled-back", payload={"log": "x"})
        session.rollback()
    with session_factory() as session:
        assert session.scalars(select(BackgroundJob)).all() == []


def test_a_commit_wakes_the_executor(
    session_factory: sessionmaker[Session], job_settings: Settings, tmp_path: Path
) -> None:
    """Polling is an hour apart here: only the after-commit wake-up can run the job in time."""
    sleepy = job_settings.model_copy(
        update={"jobs": job_settings.jobs.model_copy(update={"poll_seconds": 3600.0})}
    )
    executor = InProcessExecutor(sleepy, session_factory, schedule=False)
    session_factory.kw["info"]["oncocds.jobs.notify"].executor = executor
    executor.start()
    try:
        time.sleep(0.3)  # the threads have looked once and are waiting
        log = tmp_path / "runs.log"
        with session_factory() as session, session.begin():
            job_id = enqueue(session, kind="test.echo", key="wake", payload={"log": str(log)}).id
        wait_for(session_factory, [job_id], {"succeeded"}, timeout=30)
    finally:
        executor.stop()


def test_a_job_whose_lease_ran_out_on_every_attempt_is_dead_without_running_again(
    session_factory: sessionmaker[Session], job_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    start = utcnow() - timedelta(days=1)
    with session_factory() as session, session.begin():
        job_id = enqueue(
            session, kind="test.echo", key="ghosts", payload={"log": str(log)}, run_at=start
        ).id
    # Three workers claim it in turn and die (test.echo: 3 attempts, lease 60 s + 30 s).
    for n in range(3):
        (claimed,) = claim_due(
            session_factory, worker_id=f"ghost-{n}", now=start + timedelta(hours=n)
        )
        assert claimed.attempt == n + 1
    (fourth,) = claim_due(session_factory, worker_id="live", now=start + timedelta(hours=3))
    outcome = execute(fourth, settings=job_settings, session_factory=session_factory)
    assert (outcome.status, outcome.recorded) == ("dead", True)
    assert runs(log) == []
    with session_factory() as session:
        job = session.get(BackgroundJob, job_id)
        assert job is not None
        assert job.last_error == "no outcome after 3 attempts (lease expired)"


def test_claims_only_take_registered_kinds_on_the_asked_queues(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        enqueue(session, kind="jobs.prune", key="maint", payload={})  # queue maintenance
    assert claim_due(session_factory, worker_id="w", queues=["imaging"]) == []
    (claimed,) = claim_due(session_factory, worker_id="w", queues=["maintenance"])
    assert claimed.kind == "jobs.prune"


def test_a_periodic_kind_is_enqueued_once_per_interval_however_many_tick(
    session_factory: sessionmaker[Session], job_settings: Settings
) -> None:
    """Eight threads on two engines (two "processes") tick at the same instant: one job."""
    job_settings = job_settings.model_copy(
        update={
            "jobs": job_settings.jobs.model_copy(
                update={"extra_modules": (periodic_kinds.__name__,)}
            )
        }
    )
    other_engine = make_engine(job_settings.database_url, pool_size=8)
    other = make_sessionmaker(other_engine)
    t0 = utcnow()
    try:
        assert tick_schedules(session_factory, job_settings, now=t0) == []  # first: in 0.5 s

        def tick_all(now_offset: float) -> list[int]:
            results: list[list[int]] = []
            now = t0 + timedelta(seconds=now_offset)

            def one(factory: sessionmaker[Session]) -> None:
                results.append(tick_schedules(factory, job_settings, now=now))

            threads = [
                threading.Thread(target=one, args=(session_factory if n % 2 else other,))
                for n in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return [job_id for result in results for job_id in result]

        first = tick_all(0.6)
        assert len(first) == 1
        # Due again, but the first run has not run yet: skipped, not piled up.
        assert tick_all(1.2) == []
        with session_factory() as session, session.begin():
            job = session.get(BackgroundJob, first[0])
            assert job is not None
            job.status = "succeeded"
        second = tick_all(1.8)
        assert len(second) == 1
        assert second != first
        with session_factory() as session:
            schedule = session.get(JobSchedule, "test.tick")
            assert schedule is not None
            assert schedule.last_job_id == second[0]
            kinds = session.scalars(select(BackgroundJob.kind)).all()
            assert sorted(kinds).count("test.tick") == 2
    finally:
        other_engine.dispose()


@contextmanager
def _workers(url: str, count: int, *modules: str, env: dict[str, str]) -> Iterator[None]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.cds_service.jobs.worker_process", url, *modules],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        yield
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in procs:
            proc.wait(timeout=60)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.mark.db
def test_two_processes_on_postgresql_run_each_job_once(pg_url: str, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    engine = make_engine(pg_url, pool_size=2)
    factory = make_sessionmaker(engine)
    try:
        with _workers(pg_url, 2, test_kinds.MODULE, env={}):
            ids: list[int] = []
            for batch in range(10):
                with factory() as session, session.begin():
                    ids += [
                        enqueue(
                            session,
                            kind="test.echo",
                            key=f"mp:{batch}:{n}",
                            payload={"log": str(log), "sleep": 0.01},
                        ).id
                        for n in range(20)
                    ]
            jobs = wait_for(factory, ids, {"succeeded"}, timeout=120)
        assert all(job.attempts == 1 for job in jobs)
        assert sorted(r["job"] for r in runs(log)) == sorted(ids)
    finally:
        engine.dispose()


def test_two_processes_run_a_periodic_kind_once_per_interval(
    database_url: str, tmp_path: Path
) -> None:
    tick_log = tmp_path / "ticks.log"
    env = {"ONCOCDS_TEST_TICK_LOG": str(tick_log)}
    engine = make_engine(database_url, pool_size=2)
    factory = make_sessionmaker(engine)
    try:
        with _workers(database_url, 2, periodic_kinds.__name__, env=env):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with factory() as session:
                    done = session.scalars(
                        select(BackgroundJob).where(
                            BackgroundJob.kind == "test.tick", BackgroundJob.status == "succeeded"
                        )
                    ).all()
                if len(done) >= 4:
                    break
                time.sleep(0.1)
        with factory() as session:
            jobs = session.scalars(
                select(BackgroundJob)
                .where(BackgroundJob.kind == "test.tick")
                .order_by(BackgroundJob.created_at)
            ).all()
    finally:
        engine.dispose()
    assert len(jobs) >= 4
    # Each run's key carries the due time its process claimed; a claim needs the previous
    # claim's time + INTERVAL_S to have passed, so no two runs are closer (two processes each
    # enqueueing would put runs a few milliseconds apart).
    due = sorted(datetime.fromisoformat(j.key.split(":", 2)[2]) for j in jobs)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(due)]
    assert min(gaps) >= periodic_kinds.INTERVAL_S, gaps
    ran = [line for line in tick_log.read_text().splitlines() if line]
    assert len(ran) == len([j for j in jobs if j.status == "succeeded"])


def test_a_late_worker_cannot_overwrite_the_claim_that_replaced_it(
    session_factory: sessionmaker[Session], job_settings: Settings, tmp_path: Path
) -> None:
    """Worker A's lease ran out and B claimed the job; A finishes while B still runs: A's
    outcome is refused (fenced by the attempt number), B's is recorded."""
    log = tmp_path / "runs.log"
    start = utcnow() - timedelta(hours=2)
    with session_factory() as session, session.begin():
        job_id = enqueue(
            session, kind="test.flaky", key="fence", payload={"log": str(log)}, run_at=start
        ).id
    (a,) = claim_due(session_factory, worker_id="worker-a", now=start)
    (b,) = claim_due(session_factory, worker_id="worker-b", now=start + timedelta(hours=1))
    assert (a.attempt, b.attempt) == (1, 2)
    late = execute(a, settings=job_settings, session_factory=session_factory)
    assert late.recorded is False
    with session_factory() as session:
        job = session.get(BackgroundJob, job_id)
        assert job is not None
        assert (job.status, job.attempts, job.lease_owner, job.result) == (
            "running",
            2,
            "worker-b",
            None,
        )
    current = execute(b, settings=job_settings, session_factory=session_factory)
    assert (current.status, current.recorded) == ("succeeded", True)
    with session_factory() as session:
        job = session.get(BackgroundJob, job_id)
        assert job is not None
        assert (job.status, job.result) == ("succeeded", {"attempt": 2})
