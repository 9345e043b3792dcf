"""Running background jobs in the test's own thread, as an executor would (no threads, no
broker): the job system's real claim and execution, so tests see what a worker would record."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from cds_service.jobs import ResourcePool, RunOutcome, claim_due, execute, load_kinds
from cds_service.settings import Settings


def run_due(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    queues: Iterable[str] | None = None,
    limit: int = 10,
    now: datetime | None = None,
    resources: ResourcePool | None = None,
    worker_id: str = "test-worker",
) -> list[RunOutcome]:
    """One round: claim up to ``limit`` jobs due at ``now`` (on ``queues``; None: every queue)
    and run each, recording its outcome. Empty when nothing was due."""
    load_kinds()
    claimed = claim_due(sessions, worker_id=worker_id, queues=queues, limit=limit, now=now)
    return [
        execute(job, settings=settings, session_factory=sessions, resources=resources)
        for job in claimed
    ]
