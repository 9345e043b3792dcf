"""background_jobs and job_schedules: one job interface for all background work (issue 17)

Revision ID: 2026_12_04_0100
Revises: 2026_11_23_0600
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cds_service.db.base

revision: str = "2026_12_04_0100"
down_revision: str | None = "2026_11_23_0600"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = cds_service.db.base.UTCDateTime(timezone=True)
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "background_jobs",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("locked_until", UTC, nullable=True),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("published_at", UTC, nullable=True),
        sa.CheckConstraint(
            "status IN ('queued','running','succeeded','failed','dead')",
            name=op.f("ck_background_jobs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_background_jobs")),
        sa.UniqueConstraint("key", name=op.f("uq_background_jobs_key")),
    )
    op.create_index(
        "ix_background_jobs_status_next", "background_jobs", ["status", "next_attempt_at"]
    )
    op.create_index("ix_background_jobs_kind_created", "background_jobs", ["kind", "created_at"])
    op.create_index(
        "ix_background_jobs_unpublished",
        "background_jobs",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "job_schedules",
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", UTC, nullable=False),
        sa.Column("last_enqueued_at", UTC, nullable=True),
        sa.Column("last_job_id", BIGINT, nullable=True),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_job_schedules")),
    )


def downgrade() -> None:
    op.drop_table("job_schedules")
    op.drop_index("ix_background_jobs_unpublished", table_name="background_jobs")
    op.drop_index("ix_background_jobs_kind_created", table_name="background_jobs")
    op.drop_index("ix_background_jobs_status_next", table_name="background_jobs")
    op.drop_table("background_jobs")
