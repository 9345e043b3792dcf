"""CDS Hooks: the cards OncoCDS issued and the feedback clients sent about them.

Rows hold identifiers, not clinical payloads: the card's summary line, indicator, kind and what it
recommended (suggestion uuids, labels and action types), never prefetch data or resources.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cds_service.db.base import Base, JSONType


class CdsCard(Base):
    """A card returned by a CDS service, so that feedback and audit can refer to it."""

    __tablename__ = "cds_cards"
    __table_args__ = (
        CheckConstraint("indicator IN ('info','warning','critical')", name="indicator"),
        Index("ix_cds_cards_service_issued", "service_id", "issued_at"),
        Index("ix_cds_cards_hook_instance", "hook_instance"),
        Index("ix_cds_cards_patient_id", "patient_id"),
    )

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(128))
    hook: Mapped[str] = mapped_column(String(128))
    hook_instance: Mapped[str] = mapped_column(String(128))
    client_iss: Mapped[str] = mapped_column(String(512))
    patient_id: Mapped[str | None] = mapped_column(String(256))
    issued_at: Mapped[datetime]
    summary: Mapped[str] = mapped_column(String(140))
    indicator: Mapped[str] = mapped_column(String(16))
    #: What kind of card (``source.topic`` system|code, or ``untyped``): the governance grouping.
    card_kind: Mapped[str] = mapped_column(String(256))
    #: ``[{"uuid", "label", "actions": [{"type", "resourceType"}]}]`` per suggestion.
    recommendations: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    suggestion_uuids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: The override reasons offered (``system|code``), to tell chosen from free-text reasons.
    override_reason_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)


class CdsFeedback(Base):
    """One feedback item (CDS Hooks 2.0 §Feedback); identical resubmissions are one row."""

    __tablename__ = "cds_feedback"
    __table_args__ = (
        CheckConstraint("outcome IN ('accepted','overridden')", name="outcome"),
        Index("ix_cds_feedback_service_received", "service_id", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: SHA-256 over the feedback item's canonical JSON and the client: the idempotency key.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    card_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("cds_cards.uuid", ondelete="RESTRICT"), index=True
    )
    service_id: Mapped[str] = mapped_column(String(128))
    client_iss: Mapped[str] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_timestamp: Mapped[datetime]
    received_at: Mapped[datetime]
    accepted_suggestions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    override_reason_system: Mapped[str | None] = mapped_column(String(512))
    override_reason_code: Mapped[str | None] = mapped_column(String(128))
    override_reason_display: Mapped[str | None] = mapped_column(String(512))
    #: Whether the user typed a comment; the free text itself may hold PHI and is not kept.
    has_user_comment: Mapped[bool] = mapped_column(Boolean, default=False)
