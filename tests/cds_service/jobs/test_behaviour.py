"""The behaviour every executor must show (issue 17: one shared suite, parametrised).

Each test runs per executor in ``conftest.EXECUTORS`` and per database (SQLite, PostgreSQL).
Runs are counted from the handlers' own append-only log (``kinds.runs``), not from the code
under test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from cds_service.db.base import utcnow
from cds_service.jobs import claim_due, enqueue, execute, replay
from cds_service.jobs.executor import Executor
from cds_service.models.jobs import BackgroundJob
from cds_service.settings import Settings
from tests.cds_service.jobs.conftest import wait_for
from tests.cds_service.jobs.kinds import runs

MakeExecutor = Callable[[sessionmaker[Session]], Executor]


def _enqueue(
    session_factory: sessionmaker[Session], kind: str, key: str, payload: dict[str, object]
) -> int:
    with session_factory() as session, session.begin():
        return enqueue(session, kind=kind, key=key, payload=payload).id


def _run_one(
    session_factory: sessionmaker[Session],
    make_executor: MakeExecutor,
    kind: str,
    key: str,
    payload: dict[str, object],
    *,
    until: str,
) -> BackgroundJob:
    """Start an executor, enqueue one job and wait until its status is ``until``."""
    make_executor(session_factory).start()
    (job,) = wait_for(session_factory, [_enqueue(session_factory, kind, key, payload)], {until})
    return job


def test_a_job_runs_once_and_stores_its_result(
    session_factory: sessionmaker[Session], make_executor: MakeExecutor, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    executor = make_executor(session_factory)
    executor.start()
    job_id = _enqueue(session_factory, "test.echo", "echo:1", {"log": str(log), "value": "A-1"})
    (job,) = wait_for(session_factory, [job_id], {"succeeded"})
    assert job.result == {"echo": "A-1", "attempt": 1}
    assert job.attempts == 1
    assert job.finished_at is not None
    assert job.lease_owner is None
    assert [r["job"] for r in runs(log)] == [job_id]


def test_enqueue_is_idempotent_by_key(
    session_factory: sessionmaker[Session], make_executor: MakeExecutor, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    first = _enqueue(session_factory, "test.echo", "same-key", {"log": str(log), "value": 1})
    again = _enqueue(session_factory, "test.echo", "same-key", {"log": str(log), "value": 2})
    assert again == first
    executor = make_executor(session_factory)
    executor.start()
    (job,) = wait_for(session_factory, [first], {"succeeded"})
    # Enqueued again after it ran: still the one job, not run again.
    assert _enqueue(session_factory, "test.echo", "same-key", {"log": str(log)}) == first
    executor.notify()
    executor.stop()
    assert job.result == {"echo": 1, "attempt": 1}
    assert len(runs(log)) == 1
    with session_factory() as session:
        assert session.query(BackgroundJob).filter_by(key="same-key").count() == 1


def test_a_failing_job_is_retried_then_succeeds(
    session_factory: sessionmaker[Session], make_executor: MakeExecutor, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    job = _run_one(
        session_factory,
        make_executor,
        "test.flaky",
        "flaky:1",
        {"log": str(log), "fail_times": 1},
        until="succeeded",
    )
    assert job.result == {"attempt": 2}
    assert [r["attempt"] for r in runs(log)] == [1, 2]
    assert job.last_error is None


def test_a_job_that_keeps_failing_is_dead_after_max_attempts_with_a_phi_free_reason(
    session_factory: sessionmaker[Session], make_executor: MakeExecutor, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    marker = tmp_path / "never-created"
    job = _run_one(
        session_factory,
        make_executor,
        "test.flaky",
        "flaky:dead",
        {"log": str(log), "unless_exists": str(marker)},
        until="dead",
    )
    assert [r["attempt"] for r in runs(log)] == [1, 2, 3]  # test.flaky: max_attempts=3
    assert job.attempts == 3
    assert job.last_error == "internal error (RuntimeError)"
    assert "Testpatient" not in (job.last_error or "")


def test_a_retryable_job_error_records_its_reason(
    session_factory: sessionmaker[Session], make_executor: MakeExecutor, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    job = _run_one(
        session_factory,
        make_executor,
        "test.transient",
        "transient:1",
        {"log": str(log)},
        until="dead",
    )
    assert job.attempts == 2
    assert len(runs(log)) == 2
    assert job.last_error == "PACS timed out after 5 s (pacs.example.org)"


def test_a_permanent_error_is_dead_at_once(
    session_factory: sessionmaker[Session], make_executor: MakeExecutor, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    job = _run_one(
        session_factory,
        make_executor,
        "test.permanent",
        "permanent:1",
        {"log": str(log)},
        until="dead",
    )
    assert job.attempts == 1  # test.permanent allows 5
    assert len(runs(log)) == 1
    assert job.last_error == "unsupported content type image/x-test"


def test_a_failed_job_waits_for_its_backoff(
    session_factory: sessionmaker[Session], make_executor: MakeExecutor, tmp_path: Path
) -> None:
    """test.slow_backoff waits 3600 s (equal jitter: 1800-3600 s) after its first failure."""
    log = tmp_path / "runs.log"
    job = _run_one(
        session_factory,
        make_executor,
        "test.slow_backoff",
        "slow:1",
        {"log": str(log)},
        until="failed",
    )
    assert job.next_attempt_at is not None
    assert job.updated_at is not None
    wait = (job.next_attempt_at - job.updated_at).total_seconds()
    assert 1799 <= wait <= 3601
    assert len(runs(log)) == 1


def test_a_handler_s_own_retry_time_replaces_the_backoff(
    session_factory: sessionmaker[Session], make_executor: MakeExecutor, tmp_path: Path
) -> None:
    """test.retry_after says "try again in 42 s" (its backoff would be 1800-3600 s)."""
    log = tmp_path / "runs.log"
    job = _run_one(
        session_factory,
        make_executor,
        "test.retry_after",
        "retry-after:1",
        {"log": str(log)},
        until="failed",
    )
    assert job.next_attempt_at is not None
    assert job.updated_at is not None
    wait = (job.next_attempt_at - job.updated_at).total_seconds()
    assert 40 <= wait <= 42.5
    assert job.last_error == "rate limited by pacs.example.org"


def test_a_dead_job_can_be_replayed(
    session_factory: sessionmaker[Session], make_executor: MakeExecutor, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    marker = tmp_path / "fixed"
    make_executor(session_factory).start()
    job_id = _enqueue(
        session_factory,
        "test.flaky",
        "flaky:replay",
        {"log": str(log), "unless_exists": str(marker)},
    )
    wait_for(session_factory, [job_id], {"dead"})
    marker.touch()  # the cause is fixed
    with session_factory() as session, session.begin():
        replayed = replay(session, job_id)
        assert replayed.status == "queued"
        assert replayed.attempts == 0
        assert replayed.published_at is None
    (job,) = wait_for(session_factory, [job_id], {"succeeded"})
    assert job.result == {"attempt": 1}
    assert len(runs(log)) == 4


def test_a_dead_workers_job_is_claimed_again_after_its_lease_and_the_late_outcome_is_refused(
    session_factory: sessionmaker[Session],
    make_executor: MakeExecutor,
    job_settings: Settings,
    tmp_path: Path,
) -> None:
    log = tmp_path / "runs.log"
    long_ago = utcnow() - timedelta(hours=2)
    with session_factory() as session, session.begin():
        job_id = enqueue(
            session, kind="test.echo", key="lease:1", payload={"log": str(log)}, run_at=long_ago
        ).id
    # A worker claimed it two hours ago and died: its lease (60 s + 30 s grace) has run out.
    (ghost,) = claim_due(session_factory, worker_id="ghost", now=long_ago)
    assert ghost.id == job_id
    assert ghost.attempt == 1
    make_executor(session_factory).start()
    (job,) = wait_for(session_factory, [job_id], {"succeeded"})
    assert job.attempts == 2
    assert job.result == {"echo": None, "attempt": 2}
    # The ghost comes back and finishes: its outcome is refused and changes nothing.
    late = execute(ghost, settings=job_settings, session_factory=session_factory)
    assert late.recorded is False
    with session_factory() as session:
        after = session.get(BackgroundJob, job_id)
        assert after is not None
        assert (after.status, after.attempts, after.result) == (
            "succeeded",
            2,
            {"echo": None, "attempt": 2},
        )
    assert [r["attempt"] for r in runs(log)] == [2, 1]


def test_two_executors_racing_on_one_database_run_each_job_once(
    session_factory: sessionmaker[Session],
    make_executor: MakeExecutor,
    job_settings: Settings,
    tmp_path: Path,
) -> None:
    log = tmp_path / "runs.log"
    first, second = make_executor(session_factory), make_executor(session_factory)
    first.start()
    second.start()
    ids = []
    for batch in range(6):
        with session_factory() as session, session.begin():
            ids += [
                enqueue(
                    session, kind="test.echo", key=f"race:{batch}:{n}", payload={"log": str(log)}
                ).id
                for n in range(10)
            ]
    jobs = wait_for(session_factory, ids, {"succeeded"})
    assert all(job.attempts == 1 for job in jobs)
    ran = [r["job"] for r in runs(log)]
    assert sorted(ran) == sorted(ids)  # every job once, none twice
