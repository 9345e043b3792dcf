"""``enqueue_row``: the hot path's enqueue (a CDS Hooks card storing an analysis) adds the same
row as :func:`enqueue`, is idempotent by key, commits with the caller's data or not at all, and
wakes the executor after the commit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cds_service.jobs import JobPayloadError, UnknownJobKindError, enqueue, enqueue_row
from cds_service.jobs.inprocess import InProcessExecutor
from cds_service.models.jobs import BackgroundJob
from cds_service.settings import Settings
from tests.cds_service.jobs.conftest import wait_for

_COLUMNS = ("kind", "queue", "payload", "status", "attempts", "max_attempts", "published_at")


def test_enqueue_row_adds_the_row_enqueue_adds_once_per_key(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        assert enqueue_row(session, kind="test.echo", key="row", payload={"log": "a"}) is True
        assert enqueue_row(session, kind="test.echo", key="row", payload={"log": "b"}) is False
        enqueue(session, kind="test.echo", key="orm", payload={"log": "a"})
    with session_factory() as session:
        rows = {j.key: j for j in session.scalars(select(BackgroundJob))}
    assert sorted(rows) == ["orm", "row"]
    row, orm = rows["row"], rows["orm"]
    assert row.payload == {"log": "a"}  # the first one kept
    assert [getattr(row, c) for c in _COLUMNS] == [getattr(orm, c) for c in _COLUMNS]
    assert (row.status, row.attempts, row.next_attempt_at is not None) == ("queued", 0, True)


def test_enqueue_row_commits_with_the_callers_transaction_or_not_at_all(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session:
        assert enqueue_row(session, kind="test.echo", key="rolled-back", payload={}) is True
        session.rollback()
    with session_factory() as session:
        assert session.scalars(select(BackgroundJob)).all() == []


def test_enqueue_row_refuses_what_enqueue_refuses(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session:
        with pytest.raises(UnknownJobKindError):
            enqueue_row(session, kind="no.such.kind", key="k", payload={})
        with pytest.raises(JobPayloadError, match="at most 16384 bytes"):
            enqueue_row(session, kind="test.echo", key="k", payload={"pixels": "x" * 20_000})
        with pytest.raises(JobPayloadError, match="1-255 characters"):
            enqueue_row(session, kind="test.echo", key="", payload={})


def test_enqueue_row_wakes_the_executor_on_commit(
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
        time.sleep(0.3)
        log = tmp_path / "runs.log"
        with session_factory() as session, session.begin():
            enqueue_row(session, kind="test.echo", key="wake", payload={"log": str(log)})
        with session_factory() as session:
            job_id = session.scalars(select(BackgroundJob.id)).one()
        wait_for(session_factory, [job_id], {"succeeded"}, timeout=30)
    finally:
        executor.stop()
