"""cds_cards, cds_feedback, jwt_replay: CDS Hooks cards, feedback and the JWT replay store

Revision ID: 2026_11_23_0100
Revises: 2026_11_23_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cds_service.db.base

revision: str = "2026_11_23_0100"
down_revision: str | None = "2026_11_23_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DT = cds_service.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jwt_replay",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTC_DT, nullable=False),
        sa.Column("seen_at", UTC_DT, nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_jwt_replay")),
    )
    op.create_index("ix_jwt_replay_expires_at", "jwt_replay", ["expires_at"])
    op.create_table(
        "cds_cards",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("hook", sa.String(length=128), nullable=False),
        sa.Column("hook_instance", sa.String(length=128), nullable=False),
        sa.Column("client_iss", sa.String(length=512), nullable=False),
        sa.Column("patient_id", sa.String(length=256), nullable=True),
        sa.Column("issued_at", UTC_DT, nullable=False),
        sa.Column("summary", sa.String(length=140), nullable=False),
        sa.Column("indicator", sa.String(length=16), nullable=False),
        sa.Column("card_kind", sa.String(length=256), nullable=False),
        sa.Column("recommendations", JSON, nullable=False),
        sa.Column("suggestion_uuids", JSON, nullable=False),
        sa.Column("override_reason_codes", JSON, nullable=False),
        sa.CheckConstraint(
            "indicator IN ('info','warning','critical')", name=op.f("ck_cds_cards_indicator")
        ),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_cds_cards")),
    )
    op.create_index("ix_cds_cards_service_issued", "cds_cards", ["service_id", "issued_at"])
    op.create_index("ix_cds_cards_hook_instance", "cds_cards", ["hook_instance"])
    op.create_index("ix_cds_cards_patient_id", "cds_cards", ["patient_id"])
    op.create_table(
        "cds_feedback",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("card_uuid", sa.String(length=36), nullable=False),
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("client_iss", sa.String(length=512), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("outcome_timestamp", UTC_DT, nullable=False),
        sa.Column("received_at", UTC_DT, nullable=False),
        sa.Column("accepted_suggestions", JSON, nullable=False),
        sa.Column("override_reason_system", sa.String(length=512), nullable=True),
        sa.Column("override_reason_code", sa.String(length=128), nullable=True),
        sa.Column("override_reason_display", sa.String(length=512), nullable=True),
        sa.Column("has_user_comment", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('accepted','overridden')", name=op.f("ck_cds_feedback_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["card_uuid"],
            ["cds_cards.uuid"],
            name=op.f("fk_cds_feedback_card_uuid_cds_cards"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_feedback")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_cds_feedback_fingerprint")),
    )
    op.create_index("ix_cds_feedback_card_uuid", "cds_feedback", ["card_uuid"])
    op.create_index(
        "ix_cds_feedback_service_received", "cds_feedback", ["service_id", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_cds_feedback_service_received", table_name="cds_feedback")
    op.drop_index("ix_cds_feedback_card_uuid", table_name="cds_feedback")
    op.drop_table("cds_feedback")
    op.drop_index("ix_cds_cards_patient_id", table_name="cds_cards")
    op.drop_index("ix_cds_cards_hook_instance", table_name="cds_cards")
    op.drop_index("ix_cds_cards_service_issued", table_name="cds_cards")
    op.drop_table("cds_cards")
    op.drop_index("ix_jwt_replay_expires_at", table_name="jwt_replay")
    op.drop_table("jwt_replay")
