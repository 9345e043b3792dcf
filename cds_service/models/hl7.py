"""The HL7 v2 inbox: every received message, stored (and committed) before it is acknowledged.

A message is identified by its sender and control id, the unique key (MSH-3, MSH-4, MSH-10):
a resend of the same message finds the row and gets the stored ACK again (HL7 wiki, "Duplicate
Transmissions": re-send the original response). Status moves
``received → processing → processed | failed | received (retry)``; types OncoCDS does not
process are stored as ``not-processed``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cds_service.db.base import Base, JSONType

STATUSES = ("received", "processing", "processed", "failed", "not-processed")


class Hl7InboxMessage(Base):
    __tablename__ = "hl7_inbox_messages"
    __table_args__ = (
        # Named explicitly: the conventional name exceeds PostgreSQL's 63-character limit.
        UniqueConstraint(
            "sending_application",
            "sending_facility",
            "control_id",
            name="uq_hl7_inbox_messages_sender_control_id",
        ),
        CheckConstraint(
            "status IN ('received','processing','processed','failed','not-processed')",
            name="status",
        ),
        Index("ix_hl7_inbox_messages_status_next", "status", "next_attempt_at"),
        Index("ix_hl7_inbox_messages_received_at", "received_at"),
        Index(
            "ix_hl7_inbox_messages_app_ack_due", "application_ack_status", "application_ack_next_at"
        ),
        # The start-up sweep's rows (see audited_at); tiny: only rows whose record is pending.
        Index(
            "ix_hl7_inbox_messages_unaudited",
            "id",
            postgresql_where=text("audited_at IS NULL"),
            sqlite_where=text("audited_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    #: MSH-3 and MSH-4 as sent (HD with components), "" when empty.
    sending_application: Mapped[str] = mapped_column(String(227))
    sending_facility: Mapped[str] = mapped_column(String(227))
    #: MSH-10.
    control_id: Mapped[str] = mapped_column(String(64))
    #: MSH-9 as sent, e.g. ``ORU^R01^ORU_R01``.
    message_type: Mapped[str] = mapped_column(String(64))
    #: MSH-12.
    version: Mapped[str] = mapped_column(String(16))
    #: The Python codec the message was decoded with (None when undecodable).
    charset: Mapped[str | None] = mapped_column(String(32))
    #: MSH-15 / MSH-16 (enhanced acknowledgement conditions), "" in original mode.
    accept_ack_type: Mapped[str] = mapped_column(String(2))
    application_ack_type: Mapped[str] = mapped_column(String(2))
    #: The message exactly as received (without MLLP framing bytes).
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime]
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    #: While ``processing``: when the claim expires (a dead worker's message is claimed again).
    locked_until: Mapped[datetime | None]
    #: Why processing failed or was skipped; identifiers and codes only, never message content.
    last_error: Mapped[str | None] = mapped_column(String(512))
    #: The accept ACK as sent (None when MSH-15 asked for none); resent on a duplicate.
    ack: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Enhanced mode: the application ACK built after processing (MSH-16), sent as a message
    #: of its own to the sender's listener (``ONCOCDS_HL7__APPLICATION_ACK_ROUTES``).
    application_ack: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: ``pending`` (to send), ``sent``, ``failed`` (gave up), ``no-route`` (no destination
    #: configured for the sender); None when no application ACK was due.
    application_ack_status: Mapped[str | None] = mapped_column(String(16))
    application_ack_destination: Mapped[str | None] = mapped_column(String(256))
    application_ack_attempts: Mapped[int | None] = mapped_column(Integer)
    #: When the next delivery attempt is due (while pending; a claim pushes it by the lease).
    application_ack_next_at: Mapped[datetime | None]
    application_ack_error: Mapped[str | None] = mapped_column(String(512))
    #: Identifier-level summary of what processing produced (variants read, problems).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    #: Where the result lives, e.g. ``DiagnosticReport/<id>`` once reports are stored.
    result_ref: Mapped[str | None] = mapped_column(String(256))
    processed_at: Mapped[datetime | None]
    #: When its ``hl7.received`` audit record was committed (in the same transaction). NULL:
    #: the record is pending, or was lost with a killed listener and is written at start-up.
    audited_at: Mapped[datetime | None]
