"""Queries on ``cds_cards`` and ``cds_feedback``; feature code only flushes (sessions commit).

Issued cards are written on the audit trail's connection (:func:`insert_cards`), so they commit
with the call's audit record, under its append lock (``CdsHooksRuntime.call``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, cast, func, insert, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cds_service.models.cdshooks import CdsCard, CdsFeedback


def card_values(cards: Sequence[CdsCard]) -> list[dict[str, Any]]:
    """The column values set on new cards (unset ones keep their column defaults)."""
    values: list[dict[str, Any]] = []
    for card in cards:
        state = sa_inspect(card)
        values.append(
            {
                attr.columns[0].name: state.dict[attr.key]
                for attr in state.mapper.column_attrs
                if attr.key in state.dict
            }
        )
    return values


def insert_cards(conn: Connection, values: Sequence[dict[str, Any]]) -> None:
    """Insert issued cards (:func:`card_values`) in the caller's transaction."""
    conn.execute(insert(CdsCard), list(values))


class CardRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_cards(self, cards: Sequence[CdsCard]) -> None:
        self._session.add_all(cards)
        self._session.flush()

    def get_card(self, card_uuid: str) -> CdsCard | None:
        return self._session.get(CdsCard, card_uuid)

    def feedback_exists(self, fingerprint: str) -> bool:
        found = self._session.execute(
            select(CdsFeedback.id).where(CdsFeedback.fingerprint == fingerprint)
        ).first()
        return found is not None

    def add_feedback(self, rows: Sequence[CdsFeedback]) -> int:
        """Insert rows, skipping any another worker stored meanwhile; returns how many."""
        inserted = 0
        for row in rows:
            try:
                with self._session.begin_nested():
                    self._session.add(row)
                    self._session.flush()
                inserted += 1
            except IntegrityError:
                # The same feedback arrived concurrently (unique fingerprint): one row it is.
                continue
        return inserted

    def feedback_counts(
        self, *, service: str | None, since: datetime | None, until: datetime | None
    ) -> list[Any]:
        """Rows (service, kind, outcome, system, code, display, comments, count), grouped."""
        stmt = (
            select(
                CdsFeedback.service_id,
                CdsCard.card_kind,
                CdsFeedback.outcome,
                CdsFeedback.override_reason_system,
                CdsFeedback.override_reason_code,
                CdsFeedback.override_reason_display,
                func.sum(cast(CdsFeedback.has_user_comment, Integer)),
                func.count(),
            )
            .join(CdsCard, CdsCard.uuid == CdsFeedback.card_uuid)
            .group_by(
                CdsFeedback.service_id,
                CdsCard.card_kind,
                CdsFeedback.outcome,
                CdsFeedback.override_reason_system,
                CdsFeedback.override_reason_code,
                CdsFeedback.override_reason_display,
            )
        )
        if service is not None:
            stmt = stmt.where(CdsFeedback.service_id == service)
        if since is not None:
            stmt = stmt.where(CdsFeedback.outcome_timestamp >= since)
        if until is not None:
            stmt = stmt.where(CdsFeedback.outcome_timestamp < until)
        return list(self._session.execute(stmt).all())
