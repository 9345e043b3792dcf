"""Warm worker resources: built when a worker starts, not by its first job (issue #15: the
imaging model is "loaded and checksum-verified once per worker process, never on the request
path"). Factory calls are counted by the factories below, not by the code under test."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from cds_service.jobs import JobContext, enqueue, job_kind, worker_resource
from cds_service.jobs.inprocess import InProcessExecutor
from cds_service.jobs.registry import ResourcePool
from cds_service.settings import Settings
from tests.cds_service.jobs.conftest import wait_for

CALLS: dict[str, int] = {"warm": 0, "other_queue": 0, "not_wanted": 0, "broken": 0}
_CALLS_LOCK = threading.Lock()


def _count(name: str) -> None:
    with _CALLS_LOCK:
        CALLS[name] += 1


@worker_resource("test.warm", warm_for=("default",))
def _warm(settings: Settings) -> object:
    _count("warm")
    return object()


@worker_resource("test.warm_other_queue", warm_for=("llm",))
def _other_queue(settings: Settings) -> object:
    _count("other_queue")
    return object()


@worker_resource("test.warm_not_wanted", warm_for=("default",), warm_if=lambda s: False)
def _not_wanted(settings: Settings) -> object:
    _count("not_wanted")
    return object()


@worker_resource("test.warm_broken", warm_for=("default",))
def _broken(settings: Settings) -> object:
    _count("broken")
    raise RuntimeError("bundle checksum mismatch")


@job_kind("test.uses_warm", queue="default", max_attempts=1, time_limit_s=60)
def _uses_warm(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    with _CALLS_LOCK:
        before = CALLS["warm"]
    ctx.resource("test.warm")
    return {"built_before_job": before}


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    for name in CALLS:
        CALLS[name] = 0


def test_in_process_executor_builds_warm_resources_at_start_before_any_job(
    job_settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    executor = InProcessExecutor(job_settings, session_factory, queues=("default",))
    executor.start()
    try:
        assert executor.warmed.wait(30), "warm-up did not finish"
        # No job has been enqueued yet: only the start built it.
        assert CALLS["warm"] == 1
        # Another queue's resource, one whose condition is false: not built.
        assert CALLS["other_queue"] == 0
        assert CALLS["not_wanted"] == 0
        # A broken factory was tried once, logged, and did not stop the executor.
        assert CALLS["broken"] == 1
        with session_factory() as session, session.begin():
            job_id = enqueue(session, kind="test.uses_warm", key="warm:1", payload={}).id
        (job,) = wait_for(session_factory, [job_id], {"succeeded"})
        assert job.result == {"built_before_job": 1}
        assert CALLS["warm"] == 1  # the job reused it
    finally:
        executor.stop()


def test_warm_builds_each_resource_once_even_when_a_job_asks_at_the_same_time(
    job_settings: Settings,
) -> None:
    pool = ResourcePool(job_settings)
    threads = [threading.Thread(target=pool.warm, args=(("default",),)) for _ in range(4)]
    threads += [threading.Thread(target=pool.get, args=("test.warm",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert CALLS["warm"] == 1
    assert pool.warm(None) == ["test.warm", "test.warm_other_queue"]
    assert CALLS["other_queue"] == 1


def test_celery_pool_process_start_warms_the_queues_its_worker_serves(
    job_settings: Settings,
) -> None:
    """``worker_process_init`` is sent here by hand (no RabbitMQ connection is needed to build
    the app or warm a runtime); the worker command registers its queues the same way."""
    from celery import signals

    from cds_service.jobs import celery_app

    settings = job_settings.model_copy(
        update={
            "jobs": job_settings.jobs.model_copy(
                update={"broker_url": SecretStr("amqp://127.0.0.1:1//")}
            )
        }
    )
    app = celery_app.create_celery_app(settings)
    celery_app.warm_at_process_start(app, ("default",))
    try:
        signals.worker_process_init.send(sender=None)
        deadline = time.monotonic() + 30  # a deadline on progress, not a timing assertion
        while CALLS["warm"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert CALLS["warm"] == 1  # built with no job and no get()
        runtime = celery_app._worker_runtime(app)
        runtime.resources.get("test.warm")
        assert CALLS["warm"] == 1
        assert CALLS["other_queue"] == 0
    finally:
        celery_app._WARM_AT_START.pop(id(app), None)
        celery_app.close_runtime(app)


def test_oncocds_worker_pool_processes_warm_at_start_with_no_job(
    job_settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """A real ``oncocds worker`` (prefork pool, the machine's RabbitMQ): each pool process
    builds the warm resource of its queue as it starts; no job is enqueued."""
    import json

    from tests.cds_service.jobs import warm_resources
    from tests.cds_service.jobs.scale.celery_executor import (
        CeleryTestExecutor,
        oncocds_process,
        stop_process,
        worker_env,
    )

    executor = CeleryTestExecutor(job_settings, session_factory)
    warm_log = tmp_path / "warm.log"
    env = worker_env(executor.settings, ONCOCDS_TEST_WARM_LOG=str(warm_log))
    modules = json.loads(env["ONCOCDS_JOBS__EXTRA_MODULES"])
    env["ONCOCDS_JOBS__EXTRA_MODULES"] = json.dumps([*modules, warm_resources.MODULE])
    worker_log = tmp_path / "worker.log"
    worker = oncocds_process(
        ["worker", "--queues", "default", "--concurrency", "2"], env, worker_log
    )
    try:
        deadline = time.monotonic() + 60  # a deadline on progress, not a timing assertion
        pids: list[str] = []
        while len(pids) < 2:
            assert worker.poll() is None, worker_log.read_text()[-3000:]
            assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
            time.sleep(0.2)
            pids = warm_log.read_text().split() if warm_log.exists() else []
        assert len(set(pids)) == 2  # once in each of the two pool processes
        assert str(worker.pid) not in pids  # in the pool processes, after the fork
    finally:
        stop_process(worker)
        executor.stop()
