"""The outbox relay and the Celery task on the machine's RabbitMQ (issue 17).

Real broker, real database (SQLite and PostgreSQL), a Celery worker in a thread (the subprocess
tests start ``oncocds relay`` and ``oncocds worker`` as processes). The TCP proxy that cuts the
broker connection is a real forwarder the test controls (both ends real).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cds_service.jobs import enqueue
from cds_service.jobs.celery_app import (
    HEAVY_QUEUES,
    broker_queue,
    create_celery_app,
    prefetch_for,
    time_limits,
)
from cds_service.jobs.relay import BrokerUnavailableError, CeleryPublisher, Relay
from cds_service.models.jobs import BackgroundJob
from cds_service.settings import Settings
from tests.cds_service.jobs.conftest import wait_for
from tests.cds_service.jobs.scale import kinds as celery_kinds
from tests.cds_service.jobs.scale.celery_executor import (
    CeleryTestExecutor,
    celery_settings,
    oncocds_process,
    stop_process,
    worker_env,
)
from tests.cds_service.jobs.scale.support import (
    delete_queues,
    proxy_to_broker,
    queue_depth,
    require_broker,
    unique_prefix,
)


@pytest.fixture
def celery_executor(
    job_settings: Settings, session_factory: sessionmaker[Session]
) -> Iterator[CeleryTestExecutor]:
    executor = CeleryTestExecutor(job_settings, session_factory)
    yield executor
    executor.stop()


def _enqueue(
    session_factory: sessionmaker[Session], log: Path, n: int, *, sleep: float = 0.0
) -> list[int]:
    with session_factory() as session:
        ids = [
            enqueue(
                session,
                kind="celery-test.effect",
                key=f"effect:{log.name}:{i}",
                payload={"log": str(log), "sleep": sleep},
            ).id
            for i in range(n)
        ]
        session.commit()
    return ids


def _done_per_key(log: Path) -> dict[str, int]:
    done: dict[str, int] = {}
    for event in celery_kinds.events(log):
        if event["event"] == "done":
            done[event["key"]] = done.get(event["key"], 0) + 1
    return done


def _unpublished(session_factory: sessionmaker[Session], ids: list[int]) -> list[int]:
    with session_factory() as session:
        return list(
            session.scalars(
                select(BackgroundJob.id).where(
                    BackgroundJob.id.in_(ids), BackgroundJob.published_at.is_(None)
                )
            )
        )


def test_broker_settings_are_the_failure_surviving_ones(job_settings: Settings) -> None:
    settings = celery_settings(job_settings, "amqp://guest:guest@127.0.0.1:5672//", "p.")
    app = create_celery_app(settings)
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.broker_transport_options["confirm_publish"] is True
    assert conf.result_backend is None
    queues = {q.name: q for q in conf.task_queues}
    assert set(queues) == {f"p.{q}" for q in ("hl7", "writeback", "imaging", "llm")} | {
        "p.maintenance",
        "p.default",
    }
    assert all(q.queue_arguments == {"x-queue-type": "quorum"} for q in queues.values())
    assert all(q.durable for q in queues.values())
    assert broker_queue(settings, "imaging").routing_key == "p.imaging"
    # Heavy queues prefetch one; light ones the configured multiplier.
    assert {"imaging", "llm"} == HEAVY_QUEUES
    assert prefetch_for(["imaging", "llm"], 4) == 1
    assert prefetch_for(["hl7", "imaging"], 4) == 1
    assert prefetch_for(["hl7", "writeback"], 4) == 4
    soft, hard = time_limits(900)
    assert soft == 900
    assert hard > soft


def test_relay_publishes_committed_jobs_and_a_worker_runs_each_once(
    celery_executor: CeleryTestExecutor,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    log = tmp_path / "runs.log"
    celery_executor.start()
    ids = _enqueue(session_factory, log, 5)
    jobs = wait_for(session_factory, ids, {"succeeded"})
    assert all(job.published_at is not None for job in jobs)
    assert _done_per_key(log) == {f"effect:runs.log:{i}": 1 for i in range(5)}


def test_crash_between_publish_and_mark_republishes_and_the_job_runs_once(
    job_settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """A relay that published and died before it marked the rows: the rows are published
    again, the broker holds two messages per job, and each job still runs once."""
    executor = CeleryTestExecutor(job_settings, session_factory)
    settings = executor.settings
    log = tmp_path / "runs.log"
    ids = _enqueue(session_factory, log, 4)
    publisher = CeleryPublisher(settings)
    try:
        for job_id in ids:  # the crashed relay's publishes: confirmed, never marked
            publisher.publish(job_id, "default", celery_kinds.TIME_LIMIT_S)
        assert _unpublished(session_factory, ids) == ids
        relay = Relay(session_factory, publisher)
        assert relay.run_once() == 4  # published again after the "restart"
        assert _unpublished(session_factory, ids) == []
        assert queue_depth(executor.broker_url, executor.prefix, "default") == 8
        executor.start()  # now a worker consumes both copies
        wait_for(session_factory, ids, {"succeeded"})
        deadline = time.monotonic() + 30
        while queue_depth(executor.broker_url, executor.prefix, "default") and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert queue_depth(executor.broker_url, executor.prefix, "default") == 0
        assert _done_per_key(log) == {f"effect:runs.log:{i}": 1 for i in range(4)}
    finally:
        publisher.close()
        executor.stop()


def test_broker_down_jobs_wait_in_the_outbox_and_drain_when_it_returns(
    job_settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    broker = require_broker()
    prefix = unique_prefix()
    log = tmp_path / "runs.log"
    with proxy_to_broker(broker) as proxy:
        settings = celery_settings(job_settings, proxy.url(broker), prefix)
        publisher = CeleryPublisher(settings)
        relay = Relay(session_factory, publisher)
        try:
            first = _enqueue(session_factory, log, 2)
            assert relay.run_once() == 2  # the connection through the proxy works
            proxy.cut()  # the broker connection drops, new ones are refused
            later = _enqueue(session_factory, tmp_path / "later.log", 3)
            for _ in range(3):
                with pytest.raises(BrokerUnavailableError):
                    relay.run_once()
            assert _unpublished(session_factory, later) == later
            with session_factory() as session:
                statuses = session.scalars(
                    select(BackgroundJob.status).where(BackgroundJob.id.in_(later))
                ).all()
            assert set(statuses) == {"queued"}
            proxy.restore()
            assert relay.run_once() == 3
            assert _unpublished(session_factory, first + later) == []
            assert queue_depth(broker, prefix, "default") == 5
        finally:
            publisher.close()
            delete_queues(broker, prefix)


def test_a_failed_attempt_is_republished_when_its_retry_is_due(
    celery_executor: CeleryTestExecutor,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    log = tmp_path / "flaky.log"
    celery_executor.start()
    with session_factory() as session:
        job_id = enqueue(
            session, kind="test.flaky", key="flaky:1", payload={"log": str(log), "fail_times": 2}
        ).id
        session.commit()
    (job,) = wait_for(session_factory, [job_id], {"succeeded", "dead"})
    assert job.status == "succeeded"
    assert job.attempts == 3
    assert job.last_error is None


def _env(settings: Settings) -> dict[str, str]:
    # A lapsed claim is taken again within seconds (the effect kind's limit is 4 s).
    return worker_env(
        settings, ONCOCDS_JOBS__LEASE_GRACE_SECONDS="1", ONCOCDS_JOBS__RELAY_POLL_SECONDS="0.1"
    )


@pytest.mark.slow
def test_relay_process_killed_before_publishing_publishes_after_restart(
    job_settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    executor = CeleryTestExecutor(job_settings, session_factory)
    env = _env(executor.settings)
    log = tmp_path / "runs.log"
    relay = oncocds_process(["relay"], env, tmp_path / "relay.log")
    try:
        time.sleep(1.0)
        assert relay.poll() is None, (tmp_path / "relay.log").read_text()
        relay.send_signal(signal.SIGKILL)  # dies; the jobs below commit while it is gone
        relay.wait(10)
        ids = _enqueue(session_factory, log, 6)
        time.sleep(1.0)
        assert _unpublished(session_factory, ids) == ids
        relay = oncocds_process(["relay"], env, tmp_path / "relay.log")
        executor.start()
        wait_for(session_factory, ids, {"succeeded"})
        assert _done_per_key(log) == {f"effect:runs.log:{i}": 1 for i in range(6)}
    finally:
        stop_process(relay)
        executor.stop()


@pytest.mark.slow
def test_sigkilled_worker_mid_job_every_job_completes_once(
    job_settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """``oncocds worker`` processes, SIGKILLed while jobs run: every job ends succeeded and
    each completed exactly once (a redelivery of a finished job changes nothing)."""
    executor = CeleryTestExecutor(job_settings, session_factory)
    env = _env(executor.settings)
    log = tmp_path / "runs.log"
    worker_log = tmp_path / "worker.log"
    args = ["worker", "--queues", "default", "--concurrency", "2"]
    relay = oncocds_process(["relay"], env, tmp_path / "relay.log")
    workers = [oncocds_process(args, env, worker_log)]
    try:
        ids = _enqueue(session_factory, log, 12, sleep=1.0)
        for _kill in range(2):
            deadline = time.monotonic() + 60
            while not any(e["event"] == "start" for e in celery_kinds.events(log)):
                assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
                time.sleep(0.1)
            time.sleep(0.5)  # mid-job: handlers are sleeping
            workers[-1].send_signal(signal.SIGKILL)
            workers[-1].wait(10)
            workers.append(oncocds_process(args, env, worker_log))
        wait_for(session_factory, ids, {"succeeded"}, timeout=120)
        done = _done_per_key(log)
        assert done == {f"effect:runs.log:{i}": 1 for i in range(12)}
        starts = [e for e in celery_kinds.events(log) if e["event"] == "start"]
        assert len(starts) > 12, "no job was interrupted: the kill did not hit a running job"
    finally:
        for process in [relay, *workers]:
            stop_process(process)
        executor.stop()


def test_redelivered_message_of_a_succeeded_job_changes_nothing(
    celery_executor: CeleryTestExecutor,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    log = tmp_path / "runs.log"
    celery_executor.start()
    (job_id,) = _enqueue(session_factory, log, 1)
    (before,) = wait_for(session_factory, [job_id], {"succeeded"})
    publisher = CeleryPublisher(celery_executor.settings)
    try:
        publisher.publish(job_id, "default", celery_kinds.TIME_LIMIT_S)  # a redelivery
        deadline = time.monotonic() + 30
        while queue_depth(celery_executor.broker_url, celery_executor.prefix, "default"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        publisher.close()
    with session_factory() as session:
        after = session.get(BackgroundJob, job_id)
        assert after is not None
        assert (after.status, after.attempts, after.finished_at) == (
            "succeeded",
            before.attempts,
            before.finished_at,
        )
    assert _done_per_key(log) == {"effect:runs.log:0": 1}
