"""audit_checkpoints, search indexes, and the controlled archive delete

Revision ID: 2026_11_23_0400
Revises: 2026_11_23_0300
Create Date: 2026-11-23

- ``audit_checkpoints``: signed RFC 6962 tree heads over batches of audit records, append-only
  on PostgreSQL (UPDATE, DELETE and TRUNCATE refused by a trigger).
- Composite ``(column, seq)`` indexes for the compliance search's keyset pagination.
- The ``audit_records`` trigger now lets exactly one kind of DELETE through: inside a
  transaction that ran ``SET LOCAL oncocds.audit_archive = 'on'``, and only for records at or
  below the last checkpoint (records already sealed, and written to an archive file first by
  ``oncocds audit archive``). UPDATE and TRUNCATE stay refused for everyone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cds_service.db.base

revision: str = "2026_11_23_0400"
down_revision: str | None = "2026_11_23_0300"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_NEW_INDEXES = (
    ("ix_audit_records_patient_seq", ["patient_id", "seq"]),
    ("ix_audit_records_agent_seq", ["agent_who", "seq"]),
    ("ix_audit_records_agent_user_seq", ["agent_user", "seq"]),
    ("ix_audit_records_event_type_seq", ["event_type", "seq"]),
    ("ix_audit_records_outcome_seq", ["outcome", "seq"]),
)

_ARCHIVE_AWARE_FN = """
CREATE OR REPLACE FUNCTION oncocds_audit_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sealed bigint;
BEGIN
    -- The one permitted removal: `oncocds audit archive`, after writing and verifying the
    -- archive file, sets the transaction-local flag and deletes records already sealed by a
    -- signed checkpoint. Any other UPDATE, DELETE or TRUNCATE is refused.
    IF TG_OP = 'DELETE'
       AND coalesce(current_setting('oncocds.audit_archive', true), '') = 'on' THEN
        SELECT max(last_seq) INTO sealed FROM audit_checkpoints;
        IF sealed IS NOT NULL AND OLD.seq <= sealed THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_records is append-only: archive delete of unsealed seq % refused',
            OLD.seq USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'audit_records is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

_ORIGINAL_FN = """
CREATE OR REPLACE FUNCTION oncocds_audit_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_records is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

_CHECKPOINTS_FN = """
CREATE OR REPLACE FUNCTION oncocds_audit_checkpoints_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""
_CHECKPOINT_TRIGGERS = (
    "CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE "
    "ON audit_checkpoints FOR EACH ROW EXECUTE FUNCTION oncocds_audit_checkpoints_append_only()",
    "CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints "
    "FOR EACH STATEMENT EXECUTE FUNCTION oncocds_audit_checkpoints_append_only()",
)


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("first_seq", _BIGINT, nullable=False),
        sa.Column("last_seq", _BIGINT, nullable=False),
        sa.Column("tree_size", _BIGINT, nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("last_record_hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("created", cds_service.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
        sa.UniqueConstraint("first_seq", name=op.f("uq_audit_checkpoints_first_seq")),
        sa.UniqueConstraint("last_seq", name=op.f("uq_audit_checkpoints_last_seq")),
    )
    for name, columns in _NEW_INDEXES:
        op.create_index(name, "audit_records", columns)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_ARCHIVE_AWARE_FN)
        op.execute(_CHECKPOINTS_FN)
        for statement in _CHECKPOINT_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_truncate ON audit_checkpoints")
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_update_delete ON audit_checkpoints")
        op.execute("DROP FUNCTION IF EXISTS oncocds_audit_checkpoints_append_only()")
        op.execute(_ORIGINAL_FN)
    for name, _columns in reversed(_NEW_INDEXES):
        op.drop_index(name, table_name="audit_records")
    op.drop_table("audit_checkpoints")
