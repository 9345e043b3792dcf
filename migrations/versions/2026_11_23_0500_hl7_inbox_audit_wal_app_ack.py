"""hl7_inbox_messages: audited_at (write-ahead log of the audit record), application ACK delivery

Revision ID: 2026_11_23_0500
Revises: 2026_11_23_0400
Create Date: 2026-11-23

The listener writes a message's ``hl7.received`` audit record after the ACK (off the ACK path)
and sets ``audited_at`` in the same transaction; at start-up it writes the records that a killed
process never wrote (rows with ``audited_at IS NULL``). Rows stored before this revision are
taken as audited (their records were written by the old listener or are beyond recovery:
``received_at`` is copied, so the sweep does not flood the trail with guesses).

The ``application_ack_*`` columns track the delivery of enhanced-mode application ACKs to the
sender's own listener (status, destination, attempts, next attempt, last error).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cds_service.db.base

revision: str = "2026_11_23_0500"
down_revision: str | None = "2026_11_23_0400"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = cds_service.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("hl7_inbox_messages") as batch:
        batch.add_column(sa.Column("audited_at", UTC, nullable=True))
        batch.add_column(sa.Column("application_ack_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("application_ack_destination", sa.String(256), nullable=True))
        batch.add_column(sa.Column("application_ack_attempts", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("application_ack_next_at", UTC, nullable=True))
        batch.add_column(sa.Column("application_ack_error", sa.String(512), nullable=True))
    op.execute("UPDATE hl7_inbox_messages SET audited_at = received_at")
    op.create_index(
        "ix_hl7_inbox_messages_unaudited",
        "hl7_inbox_messages",
        ["id"],
        postgresql_where=sa.text("audited_at IS NULL"),
        sqlite_where=sa.text("audited_at IS NULL"),
    )
    op.create_index(
        "ix_hl7_inbox_messages_app_ack_due",
        "hl7_inbox_messages",
        ["application_ack_status", "application_ack_next_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_hl7_inbox_messages_app_ack_due", table_name="hl7_inbox_messages")
    op.drop_index("ix_hl7_inbox_messages_unaudited", table_name="hl7_inbox_messages")
    with op.batch_alter_table("hl7_inbox_messages") as batch:
        for column in (
            "application_ack_error",
            "application_ack_next_at",
            "application_ack_attempts",
            "application_ack_destination",
            "application_ack_status",
            "audited_at",
        ):
            batch.drop_column(column)
