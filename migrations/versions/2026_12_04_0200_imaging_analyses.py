"""imaging_results, imaging_images, imaging_requests: histopathology analyses (issue #15)

Revision ID: 2026_12_04_0200
Revises: 2026_12_04_0100
Create Date: 2026-12-04

One result per source (DICOMweb study, FHIR attachment, upload) and model bundle, reused; its
images with the analysis document and heatmap; the requests (API, upload, chart open, PACS
notification) that asked for them. ``analyses.source_kind`` takes ``imaging``: a finished imaging
request's FHIR report is stored as an analysis so the existing write-back posts it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cds_service.db.base

revision: str = "2026_12_04_0200"
down_revision: str | None = "2026_12_04_0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = cds_service.db.base.UTCDateTime(timezone=True)


GENOMIC_KINDS = "'fhir','vcf','text','hl7','cds-hook'"


def _source_kinds(kinds: str) -> None:
    with op.batch_alter_table("analyses") as batch:
        batch.drop_constraint(op.f("ck_analyses_source_kind"), type_="check")
        batch.create_check_constraint("source_kind", f"source_kind IN ({kinds})")


def upgrade() -> None:
    _source_kinds(GENOMIC_KINDS + ",'imaging'")
    op.create_table(
        "imaging_results",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source_key", sa.String(length=300), nullable=False),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("patient_ref", sa.String(length=256), nullable=True),
        sa.Column("reference", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=512), nullable=True),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created", UTC, nullable=False),
        sa.Column("updated", UTC, nullable=False),
        sa.Column("upload", sa.LargeBinary(), nullable=True),
        sa.Column("upload_type", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending','running','done','failed')",
            name=op.f("ck_imaging_results_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_results")),
        sa.UniqueConstraint(
            "source_key",
            "bundle_sha256",
            name=op.f("uq_imaging_results_source_key_bundle_sha256"),
        ),
    )
    op.create_index("ix_imaging_results_patient_ref", "imaging_results", ["patient_ref"])
    op.create_table(
        "imaging_images",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("result_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("derived_from", sa.String(length=256), nullable=True),
        sa.Column("study_uid", sa.String(length=64), nullable=True),
        sa.Column("series_uid", sa.String(length=64), nullable=True),
        sa.Column("instance_uid", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("positive_fraction", sa.Float(), nullable=True),
        sa.Column("max_probability", sa.Float(), nullable=True),
        sa.Column("analysis", sa.JSON(), nullable=False),
        sa.Column("heatmap_png", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["imaging_results.id"],
            name=op.f("fk_imaging_images_result_id_imaging_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_images")),
        sa.UniqueConstraint(
            "result_id", "position", name=op.f("uq_imaging_images_result_id_position")
        ),
    )
    op.create_index("ix_imaging_images_sha256", "imaging_images", ["sha256"])
    op.create_table(
        "imaging_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created", UTC, nullable=False),
        sa.Column("patient_ref", sa.String(length=256), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("agent", sa.String(length=256), nullable=False),
        sa.Column("result_ids", JSON, nullable=False),
        sa.Column("writeback_analysis_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "origin IN ('api','upload','cds-hook','pacs')",
            name=op.f("ck_imaging_requests_origin"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_requests")),
    )
    op.create_index(
        "ix_imaging_requests_patient_created", "imaging_requests", ["patient_ref", "created"]
    )


def downgrade() -> None:
    op.drop_index("ix_imaging_requests_patient_created", table_name="imaging_requests")
    op.drop_table("imaging_requests")
    op.drop_index("ix_imaging_images_sha256", table_name="imaging_images")
    op.drop_table("imaging_images")
    op.drop_index("ix_imaging_results_patient_ref", table_name="imaging_results")
    op.drop_table("imaging_results")
    op.execute("DELETE FROM analyses WHERE source_kind = 'imaging'")
    _source_kinds(GENOMIC_KINDS)
