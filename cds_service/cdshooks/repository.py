"""Queries on ``cds_cards`` and ``cds_feedback``; feature code only flushes (sessions commit)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cds_service.models.cdshooks import CdsCard, CdsFeedback


class CardRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_cards(self, cards: Sequence[CdsCard]) -> None:
        self._session.add_all(cards)
        self._session.flush()

    def get_card(self, card_uuid: str) -> CdsCard | None:
        return self._session.get(CdsCard, card_uuid)

    def add_feedback_once(self, row: CdsFeedback) -> bool:
        """Insert unless a row with the same fingerprint exists; True when inserted."""
        existing = self._session.execute(
            select(CdsFeedback.id).where(CdsFeedback.fingerprint == row.fingerprint)
        ).first()
        if existing is not None:
            return False
        try:
            with self._session.begin_nested():
                self._session.add(row)
                self._session.flush()
        except IntegrityError:
            # Another worker stored the same feedback between our check and insert.
            return False
        return True

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
