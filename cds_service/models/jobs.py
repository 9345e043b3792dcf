"""Background jobs (issue 17): one table for every kind of background work, and the due times
of periodic kinds.

A job row is committed with the business data that caused it (the transactional outbox): an
executor runs it after commit. ``key`` makes enqueueing idempotent. Status moves
``queued → running → succeeded | failed (retry later) | dead``; ``failed`` and ``dead`` can be
replayed. ``payload``, ``result`` and ``last_error`` hold identifiers and codes only, never PHI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from cds_service.db.base import Base, JSONType

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "dead")
#: A job that will still run: waiting, running, or failed and waiting for its retry.
LIVE_JOB_STATUSES = ("queued", "running", "failed")


class BackgroundJob(Base):
    __tablename__ = "background_jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued','running','succeeded','failed','dead')", name="status"
        ),
        Index("ix_background_jobs_status_next", "status", "next_attempt_at"),
        Index("ix_background_jobs_kind_created", "kind", "created_at"),
        # The outbox relay's rows (issue 17): only jobs not yet published to the broker.
        Index(
            "ix_background_jobs_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    #: The registered kind, e.g. ``imaging.analyse`` (``cds_service.jobs.registry``).
    kind: Mapped[str] = mapped_column(String(64))
    #: The queue its kind runs on (``hl7``, ``writeback``, ``imaging``, ``llm``, ``maintenance``).
    queue: Mapped[str] = mapped_column(String(32))
    #: The idempotency key: enqueueing the same key again returns this row.
    key: Mapped[str] = mapped_column(String(255), unique=True)
    #: Identifiers only (JSON).
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))
    #: Claims so far; the current claim's number is its fencing token.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    #: When a queued or failed job is due.
    next_attempt_at: Mapped[datetime | None]
    #: While running: who holds the claim and until when (a dead worker's job is claimed again).
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[datetime | None]
    #: Why the last attempt failed: an exception type or a PHI-free reason, never content.
    last_error: Mapped[str | None] = mapped_column(String(512))
    #: What the handler returned (identifiers only).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    #: When the outbox relay handed it to the broker (NULL: not yet; the in-process executor
    #: does not use it). A replay clears it again.
    published_at: Mapped[datetime | None]


class JobSchedule(Base):
    """When a periodic kind is next due. Claiming a due time is one conditional UPDATE, so of
    N processes ticking the schedule exactly one enqueues each run."""

    __tablename__ = "job_schedules"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime]
    last_enqueued_at: Mapped[datetime | None]
    #: The job enqueued last (``background_jobs.id``; not a foreign key: old jobs are pruned).
    last_job_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
