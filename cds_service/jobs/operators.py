"""What staff do with jobs (API and CLI alike): list, show, replay, each audited.

Job rows hold identifiers only, but keys and payloads may name a patient's study or analysis,
so every look is recorded like the HL7 inbox's and the write-back queue's: ``jobs.list`` (the
filter and a count), ``jobs.read`` (one job), ``jobs.replayed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from cds_service.audit import AuditEntity, AuditTrail
from cds_service.jobs import service
from cds_service.models.jobs import BackgroundJob


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def job_metadata(job: BackgroundJob, *, full: bool = False) -> dict[str, Any]:
    """The job as wire JSON (camelCase); ``full`` adds payload and result."""
    body: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "queue": job.queue,
        "key": job.key,
        "status": job.status,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "nextAttemptAt": _iso(job.next_attempt_at),
        "leaseOwner": job.lease_owner,
        "lockedUntil": _iso(job.locked_until),
        "lastError": job.last_error,
        "createdAt": _iso(job.created_at),
        "updatedAt": _iso(job.updated_at),
        "finishedAt": _iso(job.finished_at),
        "publishedAt": _iso(job.published_at),
    }
    if full:
        body["payload"] = job.payload
        body["result"] = job.result
    return body


def _entity(job: BackgroundJob) -> list[AuditEntity]:
    return [{"type": "BackgroundJob", "id": str(job.id)}]


def list_jobs(
    session_factory: sessionmaker[Session],
    trail: AuditTrail,
    *,
    agent_who: str,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
    **context: Any,
) -> Sequence[BackgroundJob]:
    with session_factory() as session:
        rows = service.list_jobs(
            session, status=status, kind=kind, limit=limit, before_id=before_id
        )
        session.expunge_all()
    trail.record(
        action="R",
        event_type="jobs.list",
        agent_who=agent_who,
        details={"status": status, "kind": kind, "count": len(rows)},
        **context,
    )
    return rows


def show_job(
    session_factory: sessionmaker[Session],
    trail: AuditTrail,
    job_id: int,
    *,
    agent_who: str,
    **context: Any,
) -> BackgroundJob:
    with session_factory() as session:
        job = service.get_job(session, job_id)
        session.expunge(job)
    trail.record(
        action="R",
        event_type="jobs.read",
        agent_who=agent_who,
        entities=_entity(job),
        details={"kind": job.kind},
        **context,
    )
    return job


def replay_job(
    session_factory: sessionmaker[Session],
    trail: AuditTrail,
    job_id: int,
    *,
    agent_who: str,
    **context: Any,
) -> BackgroundJob:
    """Queue a dead or failed job again (committed, then audited; the audit trail writes in its
    own transaction, so the update commits first on SQLite's single writer).

    Raises:
        NotFoundError, ConflictError: see :func:`cds_service.jobs.service.replay`.
    """
    with session_factory() as session, session.begin():
        job = service.replay(session, job_id)
        previous_error = job.last_error
    session.expunge_all()
    trail.record(
        action="U",
        event_type="jobs.replayed",
        agent_who=agent_who,
        entities=_entity(job),
        details={"kind": job.kind, "last_error": previous_error},
        **context,
    )
    return job
