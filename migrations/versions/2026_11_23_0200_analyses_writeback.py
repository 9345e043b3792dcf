"""analyses and writeback_jobs: stored interpretations, report Bundles and EHR write-back jobs

Revision ID: 2026_11_23_0200
Revises: 2026_11_23_0100
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cds_service.db.base

revision: str = "2026_11_23_0200"
down_revision: str | None = "2026_11_23_0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = cds_service.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "analyses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created", UTC, nullable=False),
        sa.Column("patient_ref", sa.String(length=256), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("tumour_type_code", sa.String(length=32), nullable=True),
        sa.Column("kb_version", sa.String(length=128), nullable=False),
        sa.Column("oncocds_version", sa.String(length=64), nullable=False),
        sa.Column("interpretation", JSON, nullable=False),
        sa.Column("report_bundle", JSON, nullable=False),
        sa.CheckConstraint(
            "source_kind IN ('fhir','vcf','text','hl7','cds-hook')",
            name=op.f("ck_analyses_source_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analyses")),
    )
    op.create_index("ix_analyses_patient_created", "analyses", ["patient_ref", "created"])
    op.create_table(
        "writeback_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("analysis_id", sa.String(length=36), nullable=False),
        sa.Column("fhir_base_url", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created", UTC, nullable=False),
        sa.Column("updated", UTC, nullable=False),
        sa.Column("next_attempt", UTC, nullable=True),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        sa.Column("response_locations", JSON, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending','done','failed')", name=op.f("ck_writeback_jobs_status")
        ),
        sa.ForeignKeyConstraint(
            ["analysis_id"],
            ["analyses.id"],
            name=op.f("fk_writeback_jobs_analysis_id_analyses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_writeback_jobs")),
    )
    op.create_index("ix_writeback_jobs_status_next", "writeback_jobs", ["status", "next_attempt"])
    op.create_index("ix_writeback_jobs_analysis_id", "writeback_jobs", ["analysis_id"])


def downgrade() -> None:
    op.drop_index("ix_writeback_jobs_analysis_id", table_name="writeback_jobs")
    op.drop_index("ix_writeback_jobs_status_next", table_name="writeback_jobs")
    op.drop_table("writeback_jobs")
    op.drop_index("ix_analyses_patient_created", table_name="analyses")
    op.drop_table("analyses")
