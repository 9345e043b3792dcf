"""Queries on ``analyses`` and ``writeback_jobs``; driver errors become :class:`DatabaseError`.

Feature code only flushes; the request session (or the CLI's unit of work) commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, literal, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cds_service.errors import DatabaseError
from cds_service.models.analysis import WRITEBACK_STATUSES, Analysis, WritebackJob
from cds_service.models.jobs import LIVE_JOB_STATUSES, BackgroundJob

MAX_LIST = 500


@contextmanager
def _database_errors(message: str) -> Iterator[None]:
    """Driver errors raised in the block become :class:`DatabaseError` (``message``, no SQL)."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise DatabaseError(message) from exc


def _flush(session: Session, what: str) -> None:
    with _database_errors(f"could not store the {what}"):
        session.flush()


def add_analysis(session: Session, analysis: Analysis) -> Analysis:
    session.add(analysis)
    _flush(session, "analysis")
    return analysis


def get_analysis(session: Session, analysis_id: str) -> Analysis | None:
    with _database_errors("could not read the analysis"):
        return session.get(Analysis, analysis_id)


def add_writeback_job(session: Session, job: WritebackJob) -> WritebackJob:
    session.add(job)
    _flush(session, "write-back job")
    return job


def get_writeback_job(
    session: Session, job_id: str, *, for_update: bool = False
) -> WritebackJob | None:
    """The job; ``for_update``: row-locked until the transaction ends (PostgreSQL), so that
    checking its claim and recording an outcome are one step."""
    with _database_errors("could not read the write-back job"):
        return session.get(WritebackJob, job_id, with_for_update=for_update or None)


def list_writeback_jobs(
    session: Session, *, status: str | None = None, limit: int = 100
) -> Sequence[WritebackJob]:
    """Jobs newest first, optionally of one status (``pending``, ``done``, ``failed``)."""
    if status is not None and status not in WRITEBACK_STATUSES:
        raise ValueError(f"unknown write-back status {status!r}")
    stmt = select(WritebackJob).order_by(WritebackJob.created.desc(), WritebackJob.id)
    if status is not None:
        stmt = stmt.where(WritebackJob.status == status)
    stmt = stmt.limit(max(1, min(limit, MAX_LIST)))
    with _database_errors("could not list write-back jobs"):
        return session.scalars(stmt).all()


#: Key of the ``writeback.round`` background job of write-back job ``<id>``: ``writeback:<id>``.
ROUND_KEY_PREFIX = "writeback:"


def due_writeback_jobs(
    session: Session, now: datetime, *, limit: int = 100, orphans_only: bool = False
) -> Sequence[WritebackJob]:
    """Pending jobs whose next attempt is due (or unset), oldest first.

    ``orphans_only`` (the periodic sweep): only those no live ``writeback.round`` job will run
    (rows from before the job system, rounds whose job died). A job whose round job is still
    queued, running or retrying is left to it: a sweep that claimed it would make the round job
    wait for the sweep's lease, and a sweep killed mid-round would hold it for the whole lease."""
    stmt = (
        select(WritebackJob)
        .where(WritebackJob.status == "pending")
        .where((WritebackJob.next_attempt.is_(None)) | (WritebackJob.next_attempt <= now))
        .order_by(WritebackJob.created)
        .limit(max(1, min(limit, MAX_LIST)))
    )
    if orphans_only:
        live_round = (
            select(BackgroundJob.id)
            .where(
                BackgroundJob.key == literal(ROUND_KEY_PREFIX) + WritebackJob.id,
                BackgroundJob.status.in_(LIVE_JOB_STATUSES),
            )
            .exists()
        )
        stmt = stmt.where(~live_round)
    with _database_errors("could not list due write-back jobs"):
        return session.scalars(stmt).all()


def claim_writeback_job(
    session: Session,
    job_id: str,
    *,
    now: datetime,
    until: datetime,
    owner: str,
    take_over: str | None = None,
) -> bool:
    """Take a due ``pending`` job for one round: its ``next_attempt`` moves to ``until`` (the
    lease) and ``claimed_by`` to ``owner`` in one conditional UPDATE, so of two runners (the
    round job, the sweep, another process) exactly one gets it. A runner that dies leaves the
    job pending; it is due again when the lease ends, or at once for a claimant whose owner
    starts with ``take_over`` (a later attempt of the ``writeback.round`` job that held it:
    the job system already fenced that attempt off). Flushes only."""
    claimable = or_(WritebackJob.next_attempt.is_(None), WritebackJob.next_attempt <= now)
    if take_over:
        claimable = or_(claimable, WritebackJob.claimed_by.startswith(take_over, autoescape=True))
    stmt = (
        update(WritebackJob)
        .where(WritebackJob.id == job_id, WritebackJob.status == "pending", claimable)
        .values(next_attempt=until, updated=now, claimed_by=owner)
        .execution_options(synchronize_session=False)
    )
    with _database_errors("could not claim the write-back job"):
        result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
    return result.rowcount == 1
