"""Queries over ``audit_records`` for compliance search, keyset-paginated on ``seq``.

Newest first: a page is ``seq < cursor ORDER BY seq DESC LIMIT n``; with a filter on patient,
agent, agent user, event type or outcome the ``(column, seq)`` indexes of migration
2026_11_23_0400 answer it without sorting, at any depth and table size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, or_, select
from sqlalchemy.exc import SQLAlchemyError

from cds_service.errors import DatabaseError
from cds_service.models.audit import AuditRecord

_T = AuditRecord.__table__


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Search criteria; ``None`` means "any"."""

    patient: str | None = None
    agent: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    event_type: str | None = None
    outcome: int | None = None
    request_id: str | None = None
    hook_instance: str | None = None
    control_id: str | None = None

    def used(self) -> dict[str, Any]:
        """The filters set, as identifiers (for the audit record of the query)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        c = AuditRecord
        if self.patient is not None:
            stmt = stmt.where(c.patient_id == self.patient)
        if self.agent is not None:
            stmt = stmt.where(or_(c.agent_who == self.agent, c.agent_user == self.agent))
        if self.since is not None:
            stmt = stmt.where(c.recorded >= self.since)
        if self.until is not None:
            stmt = stmt.where(c.recorded < self.until)
        if self.action is not None:
            stmt = stmt.where(c.action == self.action)
        if self.event_type is not None:
            stmt = stmt.where(c.event_type == self.event_type)
        if self.outcome is not None:
            stmt = stmt.where(c.outcome == self.outcome)
        if self.request_id is not None:
            stmt = stmt.where(c.request_id == self.request_id)
        if self.hook_instance is not None:
            stmt = stmt.where(c.hook_instance == self.hook_instance)
        if self.control_id is not None:
            stmt = stmt.where(c.control_id == self.control_id)
        return stmt


class AuditRepository:
    """Read-only access to the audit trail for compliance features."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def search(
        self, flt: AuditFilter, *, cursor: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page, newest first, and the cursor of the next page."""
        if flt.agent is not None:
            rows = self._agent_rows(flt, cursor, limit + 1)
        else:
            stmt = flt.apply(select(_T))
            if cursor is not None:
                stmt = stmt.where(AuditRecord.seq < cursor)
            rows = self._all(stmt.order_by(AuditRecord.seq.desc()).limit(limit + 1))
        next_cursor = rows[limit - 1]["seq"] if len(rows) > limit else None
        return rows[:limit], next_cursor

    def _agent_rows(self, flt: AuditFilter, cursor: int | None, n: int) -> list[dict[str, Any]]:
        """ "Agent X" means the client *or* the user: two index-ordered scans, merged here.

        With ``agent_who = X OR agent_user = X`` PostgreSQL collects every match and sorts
        (12.7 ms for a user with 2,000 records in 1 M, bench_audit). Each side alone walks its
        ``(column, seq)`` index newest-first and stops after ``n`` rows, at any table size.
        """
        rest = dataclasses.replace(flt, agent=None)
        rows: list[dict[str, Any]] = []
        for condition in (
            AuditRecord.agent_who == flt.agent,
            # not already found on the client side
            (AuditRecord.agent_user == flt.agent) & (AuditRecord.agent_who != flt.agent),
        ):
            side = rest.apply(select(_T)).where(condition)
            if cursor is not None:
                side = side.where(AuditRecord.seq < cursor)
            rows.extend(self._all(side.order_by(AuditRecord.seq.desc()).limit(n)))
        rows.sort(key=lambda r: r["seq"], reverse=True)
        return rows[:n]

    def get(self, record_id: str) -> dict[str, Any] | None:
        rows = self._all(select(_T).where(AuditRecord.id == record_id))
        return rows[0] if rows else None

    def iter_ascending(
        self, flt: AuditFilter, *, through_seq: int, batch: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Every matching record up to ``through_seq``, oldest first, in keyset batches.

        Each batch runs on its own short connection, so a slow consumer (a streaming export)
        holds no transaction open.
        """
        after = 0
        while True:
            stmt = (
                flt.apply(select(_T))
                .where(AuditRecord.seq > after, AuditRecord.seq <= through_seq)
                .order_by(AuditRecord.seq)
                .limit(batch)
            )
            rows = self._all(stmt)
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1]["seq"]

    def _all(self, stmt: Select[Any]) -> list[dict[str, Any]]:
        try:
            with self._engine.connect() as conn:
                return _rows(conn, stmt)
        except SQLAlchemyError as exc:
            raise DatabaseError("the audit trail could not be read") from exc


def _rows(conn: Connection, stmt: Select[Any]) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(stmt)]
