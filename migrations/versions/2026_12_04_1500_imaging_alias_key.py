"""imaging_results.alias_key: one result per DICOM study however it was asked for (issue #15)

Revision ID: 2026_12_04_1500
Revises: 2026_12_04_0300
Create Date: 2026-12-04

A study asked for as ``ImagingStudy/x`` (FHIR) and by its study UID (PACS notification) is one
result: once the job has read the ImagingStudy's UID, the row is keyed ``dicom-study:<uid>``
and keeps the FHIR key as its alias, so that either way of asking finds it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_12_04_1500"
down_revision: str | None = "2026_12_04_0300"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("imaging_results", sa.Column("alias_key", sa.String(length=300), nullable=True))
    op.create_index(
        "ix_imaging_results_alias_key",
        "imaging_results",
        ["alias_key", "bundle_sha256"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_imaging_results_alias_key", table_name="imaging_results")
    with op.batch_alter_table("imaging_results") as batch:
        batch.drop_column("alias_key")
