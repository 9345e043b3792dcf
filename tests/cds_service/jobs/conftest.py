"""Fixtures of the job tests: the executors the shared behavioural suite runs against.

``EXECUTORS`` maps a name to a factory ``(settings, session_factory) -> Executor``; the suite in
``test_behaviour.py`` runs once per entry and per database. Another executor (Celery) adds its
entry here (or appends to the list from its own conftest before collection); its factory's
``start()`` must bring up whatever it needs (relay, workers) and ``stop()`` take it down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cds_service.db.engine import make_engine
from cds_service.db.session import make_sessionmaker
from cds_service.jobs.executor import Executor, install_notifier
from cds_service.jobs.inprocess import InProcessExecutor
from cds_service.models.jobs import BackgroundJob
from cds_service.settings import Settings
from tests.cds_service.jobs import kinds as test_kinds
from tests.cds_service.jobs.scale.celery_executor import CeleryTestExecutor

ExecutorFactory = Callable[[Settings, "sessionmaker[Session]"], Executor]


def _in_process(settings: Settings, session_factory: sessionmaker[Session]) -> Executor:
    return InProcessExecutor(settings, session_factory)


#: name -> factory; extend with another executor to run the whole suite on it.
EXECUTORS: dict[str, ExecutorFactory] = {
    "in-process": _in_process,
    # Relay thread + a Celery worker thread on the machine's RabbitMQ (issue 17).
    "celery": CeleryTestExecutor,
}

#: Fast polling so tests do not wait for the defaults; the job modules of the tests.
JOB_TEST_SETTINGS: dict[str, Any] = {
    "threads": 2,
    "poll_seconds": 0.05,
    "schedule_poll_seconds": 0.1,
    "lease_grace_seconds": 30.0,
    "stop_timeout_seconds": 10.0,
    "extra_modules": (test_kinds.MODULE,),
}


@pytest.fixture
def job_settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url, jobs=JOB_TEST_SETTINGS)


@pytest.fixture
def job_engine(job_settings: Settings) -> Iterator[Engine]:
    engine = make_engine(job_settings.database_url, pool_size=8)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(job_engine: Engine) -> sessionmaker[Session]:
    factory = make_sessionmaker(job_engine)
    install_notifier(factory)
    return factory


@pytest.fixture(params=sorted(EXECUTORS))
def make_executor(
    request: pytest.FixtureRequest, job_settings: Settings
) -> Iterator[Callable[[sessionmaker[Session]], Executor]]:
    """Build (and at teardown stop) executors of the parametrised kind."""
    factory = EXECUTORS[request.param]
    started: list[Executor] = []

    def build(session_factory: sessionmaker[Session]) -> Executor:
        executor = factory(job_settings, session_factory)
        started.append(executor)
        return executor

    yield build
    for executor in started:
        executor.stop()


def wait_for(
    session_factory: sessionmaker[Session],
    job_ids: list[int],
    statuses: set[str],
    *,
    timeout: float = 60.0,
) -> list[BackgroundJob]:
    """Poll until every job is in one of ``statuses``; fail (not a timing assertion: a
    deadline on progress) when they are not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        with session_factory() as session:
            jobs = [session.get(BackgroundJob, job_id) for job_id in job_ids]
        if all(job is not None and job.status in statuses for job in jobs):
            return [job for job in jobs if job is not None]
        if time.monotonic() > deadline:
            states = sorted({(job.status if job else "missing") for job in jobs})
            pytest.fail(f"jobs not {sorted(statuses)} after {timeout} s: {states}")
        time.sleep(0.05)
