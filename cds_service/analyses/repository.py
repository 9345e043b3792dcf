"""Queries on ``analyses`` and ``writeback_jobs``; driver errors become :class:`DatabaseError`.

Feature code only flushes; the request session (or the CLI's unit of work) commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from cds_service.errors import DatabaseError
from cds_service.models.analysis import WRITEBACK_STATUSES, Analysis, WritebackJob

MAX_LIST = 500


def _flush(session: Session, what: str) -> None:
    try:
        session.flush()
    except (OperationalError, SQLAlchemyError) as exc:
        raise DatabaseError(f"could not store the {what}") from exc


def add_analysis(session: Session, analysis: Analysis) -> Analysis:
    session.add(analysis)
    _flush(session, "analysis")
    return analysis


def get_analysis(session: Session, analysis_id: str) -> Analysis | None:
    try:
        return session.get(Analysis, analysis_id)
    except SQLAlchemyError as exc:
        raise DatabaseError("could not read the analysis") from exc


def add_writeback_job(session: Session, job: WritebackJob) -> WritebackJob:
    session.add(job)
    _flush(session, "write-back job")
    return job


def get_writeback_job(session: Session, job_id: str) -> WritebackJob | None:
    try:
        return session.get(WritebackJob, job_id)
    except SQLAlchemyError as exc:
        raise DatabaseError("could not read the write-back job") from exc


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
    try:
        return session.scalars(stmt).all()
    except SQLAlchemyError as exc:
        raise DatabaseError("could not list write-back jobs") from exc


def due_writeback_jobs(
    session: Session, now: datetime, *, limit: int = 100
) -> Sequence[WritebackJob]:
    """Pending jobs whose next attempt is due (or unset), oldest first."""
    stmt = (
        select(WritebackJob)
        .where(WritebackJob.status == "pending")
        .where((WritebackJob.next_attempt.is_(None)) | (WritebackJob.next_attempt <= now))
        .order_by(WritebackJob.created)
        .limit(max(1, min(limit, MAX_LIST)))
    )
    try:
        return session.scalars(stmt).all()
    except SQLAlchemyError as exc:
        raise DatabaseError("could not list due write-back jobs") from exc
