"""Queries on ``explanations``; driver errors become :class:`DatabaseError`. Flushes only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cds_service.errors import DatabaseError
from cds_service.models.explanations import Explanation

#: Latency percentiles are computed over the newest this many generated explanations.
LATENCY_WINDOW = 1000


@contextmanager
def _database_errors(message: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise DatabaseError(message) from exc


def add(session: Session, row: Explanation) -> Explanation:
    session.add(row)
    with _database_errors("could not store the explanation"):
        session.flush()
    return row


def get(session: Session, explanation_id: str) -> Explanation | None:
    with _database_errors("could not read the explanation"):
        return session.get(Explanation, explanation_id)


def find(
    session: Session, subject_kind: str, subject_id: str, cache_key: str
) -> Explanation | None:
    stmt = select(Explanation).where(
        Explanation.subject_kind == subject_kind,
        Explanation.subject_id == subject_id,
        Explanation.cache_key == cache_key,
    )
    with _database_errors("could not read the explanation"):
        return session.scalars(stmt).first()


def ready_with_key(session: Session, cache_key: str) -> Explanation | None:
    """A ready explanation of the same input, prompt version and model digest (any subject)."""
    stmt = (
        select(Explanation)
        .where(Explanation.cache_key == cache_key, Explanation.status == "ready")
        .order_by(Explanation.completed)
        .limit(1)
    )
    with _database_errors("could not read the explanation cache"):
        return session.scalars(stmt).first()


def latest_for(session: Session, subject_kind: str, subject_id: str) -> Explanation | None:
    stmt = (
        select(Explanation)
        .where(Explanation.subject_kind == subject_kind, Explanation.subject_id == subject_id)
        .order_by(Explanation.created.desc(), Explanation.id)
        .limit(1)
    )
    with _database_errors("could not read the explanation"):
        return session.scalars(stmt).first()


def counters(session: Session) -> dict[str, Any]:
    """Totals over every explanation: rows by status and source, generations, retries,
    grounding failures, fallbacks, cache hits, tokens."""
    stmt = select(
        func.count(),
        func.count().filter(Explanation.status == "ready"),
        func.coalesce(func.sum(Explanation.generations), 0),
        func.coalesce(func.sum(Explanation.retries), 0),
        func.count().filter(Explanation.grounding_failed.is_(True)),
        func.count().filter(Explanation.fallback.is_(True)),
        func.count().filter(Explanation.cached.is_(True)),
        func.count().filter(Explanation.source == "model"),
        func.coalesce(func.sum(Explanation.eval_count), 0),
    )
    with _database_errors("could not count explanations"):
        row = session.execute(stmt).one()
    return {
        "explanations": int(row[0]),
        "ready": int(row[1]),
        "generations": int(row[2]),
        "retries": int(row[3]),
        "groundingFailures": int(row[4]),
        "fallbacks": int(row[5]),
        "cacheHits": int(row[6]),
        "modelTexts": int(row[7]),
        "tokensGenerated": int(row[8]),
    }


def recent_latencies(session: Session) -> Sequence[int]:
    stmt = (
        select(Explanation.latency_ms)
        .where(Explanation.latency_ms.is_not(None), Explanation.generations > 0)
        .order_by(Explanation.completed.desc())
        .limit(LATENCY_WINDOW)
    )
    with _database_errors("could not read explanation latencies"):
        return [int(v) for v in session.scalars(stmt).all() if v is not None]
