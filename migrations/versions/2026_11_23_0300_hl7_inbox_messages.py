"""hl7_inbox_messages: HL7 v2 messages stored before they are acknowledged (issue #5)

Revision ID: 2026_11_23_0300
Revises: 2026_11_23_0200
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cds_service.db.base

revision: str = "2026_11_23_0300"
down_revision: str | None = "2026_11_23_0200"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = cds_service.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hl7_inbox_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sending_application", sa.String(length=227), nullable=False),
        sa.Column("sending_facility", sa.String(length=227), nullable=False),
        sa.Column("control_id", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("charset", sa.String(length=32), nullable=True),
        sa.Column("accept_ack_type", sa.String(length=2), nullable=False),
        sa.Column("application_ack_type", sa.String(length=2), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=True),
        sa.Column("locked_until", UTC, nullable=True),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        sa.Column("ack", sa.LargeBinary(), nullable=True),
        sa.Column("application_ack", sa.LargeBinary(), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("result_ref", sa.String(length=256), nullable=True),
        sa.Column("processed_at", UTC, nullable=True),
        sa.CheckConstraint(
            "status IN ('received','processing','processed','failed','not-processed')",
            name=op.f("ck_hl7_inbox_messages_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_inbox_messages")),
        sa.UniqueConstraint(
            "sending_application",
            "sending_facility",
            "control_id",
            name="uq_hl7_inbox_messages_sender_control_id",
        ),
    )
    op.create_index("ix_hl7_inbox_messages_received_at", "hl7_inbox_messages", ["received_at"])
    op.create_index(
        "ix_hl7_inbox_messages_status_next", "hl7_inbox_messages", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_hl7_inbox_messages_status_next", table_name="hl7_inbox_messages")
    op.drop_index("ix_hl7_inbox_messages_received_at", table_name="hl7_inbox_messages")
    op.drop_table("hl7_inbox_messages")
