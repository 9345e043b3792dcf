"""A redelivered job whose claim is held by a Celery pool process of this host that cannot
finish it: the claim is released and the job runs now, not when its lease (up to 30 min for a
write-back round) runs out.

The holders are real processes (``sleep``): one that has exited, one orphaned as a pool process
is when its worker's main process is SIGKILLed (re-parented to PID 1), and one whose parent
(this test) is alive, which keeps its claim.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from cds_service.db.base import utcnow
from cds_service.jobs import enqueue, load_kinds
from cds_service.jobs.celery_app import _release_dead_local_claim
from cds_service.models.jobs import BackgroundJob
from cds_service.settings import Settings

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="orphans are recognised through /proc"
)


class _Runtime:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory


def _held_by(session_factory: sessionmaker[Session], pid: int) -> int:
    """A running job whose claim (attempt 1, lease 30 min ahead) names ``pid`` on this host."""
    load_kinds()
    with session_factory() as session, session.begin():
        job = enqueue(session, kind="jobs.prune", key=f"held-by-{pid}", payload={})
        session.flush()
        session.execute(
            update(BackgroundJob)
            .where(BackgroundJob.id == job.id)
            .values(
                status="running",
                attempts=1,
                lease_owner=f"celery:{socket.gethostname()}:{pid}",
                locked_until=utcnow() + timedelta(minutes=30),
            )
        )
        return job.id


def _locked_until(session_factory: sessionmaker[Session], job_id: int) -> object:
    with session_factory() as session:
        job = session.get(BackgroundJob, job_id)
        assert job is not None
        return job.locked_until


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def orphan() -> Iterator[int]:
    """A ``sleep`` whose parent (a shell) has exited: re-parented to PID 1."""
    shell = subprocess.run(
        ["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(shell.stdout)
    yield pid
    subprocess.run(["kill", str(pid)], check=False)


def test_a_claim_of_a_process_that_exited_is_released(
    session_factory: sessionmaker[Session], job_settings: Settings
) -> None:
    exited = subprocess.Popen(["true"])
    exited.wait()
    job_id = _held_by(session_factory, exited.pid)
    assert _release_dead_local_claim(_Runtime(session_factory), job_id)  # type: ignore[arg-type]
    assert _locked_until(session_factory, job_id) < utcnow()  # type: ignore[operator]


def test_a_claim_of_an_orphaned_pool_process_is_released(
    session_factory: sessionmaker[Session], job_settings: Settings, orphan: int
) -> None:
    job_id = _held_by(session_factory, orphan)
    assert _release_dead_local_claim(_Runtime(session_factory), job_id)  # type: ignore[arg-type]
    assert _locked_until(session_factory, job_id) < utcnow()  # type: ignore[operator]


def test_a_claim_of_a_live_process_with_a_live_parent_is_kept(
    session_factory: sessionmaker[Session],
    job_settings: Settings,
    child: subprocess.Popen[bytes],
) -> None:
    job_id = _held_by(session_factory, child.pid)
    assert not _release_dead_local_claim(_Runtime(session_factory), job_id)  # type: ignore[arg-type]
    assert _locked_until(session_factory, job_id) > utcnow()  # type: ignore[operator]


def test_a_child_of_pid_1_keeps_its_claim_when_pid_1_is_this_worker(
    session_factory: sessionmaker[Session],
    job_settings: Settings,
    orphan: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker started as a container's PID 1 is the parent of its own pool processes, so a
    child of PID 1 is no orphan there. No such container runs here: this process is made to
    look like one of that worker's pool processes (its parent PID 1), the one thing not real."""
    monkeypatch.setattr(os, "getppid", lambda: 1)
    job_id = _held_by(session_factory, orphan)
    assert not _release_dead_local_claim(_Runtime(session_factory), job_id)  # type: ignore[arg-type]
    assert _locked_until(session_factory, job_id) > utcnow()  # type: ignore[operator]
