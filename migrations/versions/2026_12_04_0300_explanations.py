"""explanations: plain-language explanations from a local LLM, with their counters (issue #16)

Revision ID: 2026_12_04_0300
Revises: 2026_12_04_0200
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cds_service.db.base

revision: str = "2026_12_04_0300"
down_revision: str | None = "2026_12_04_0200"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "explanations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("input_hash", sa.String(length=64), nullable=False),
        sa.Column("prompt_version", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_digest", sa.String(length=100), nullable=True),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.Column("content", sa.JSON(), nullable=True),
        sa.Column("fallback_reason", sa.String(length=512), nullable=True),
        sa.Column(
            "grounding_problems",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("generations", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("grounding_failed", sa.Boolean(), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("eval_count", sa.Integer(), nullable=False),
        sa.Column("created", cds_service.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed", cds_service.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "subject_kind IN ('analysis','image')", name=op.f("ck_explanations_subject_kind")
        ),
        sa.CheckConstraint(
            "kind IN ('genomic','histopathology')", name=op.f("ck_explanations_kind")
        ),
        sa.CheckConstraint("status IN ('pending','ready')", name=op.f("ck_explanations_status")),
        sa.CheckConstraint(
            "source IS NULL OR source IN ('model','template')", name=op.f("ck_explanations_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_explanations")),
        sa.UniqueConstraint(
            "subject_kind",
            "subject_id",
            "cache_key",
            name=op.f("uq_explanations_subject_kind_subject_id_cache_key"),
        ),
    )
    op.create_index(
        "ix_explanations_cache_key_status", "explanations", ["cache_key", "status"], unique=False
    )
    op.create_index("ix_explanations_created", "explanations", ["created"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_explanations_created", table_name="explanations")
    op.drop_index("ix_explanations_cache_key_status", table_name="explanations")
    op.drop_table("explanations")
