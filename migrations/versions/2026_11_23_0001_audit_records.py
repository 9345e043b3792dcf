"""audit_records: append-only, hash-chained audit trail

Revision ID: 2026_11_23_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cds_service.db.base

revision: str = "2026_11_23_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# PostgreSQL: the table is append-only for everyone but a superuser who disables the trigger.
_APPEND_ONLY_FN = """
CREATE OR REPLACE FUNCTION oncocds_audit_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_records is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""
_TRIGGERS = (
    "CREATE TRIGGER audit_records_no_update_delete BEFORE UPDATE OR DELETE ON audit_records "
    "FOR EACH ROW EXECUTE FUNCTION oncocds_audit_records_append_only()",
    "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records "
    "FOR EACH STATEMENT EXECUTE FUNCTION oncocds_audit_records_append_only()",
)


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recorded", cds_service.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=1), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("event_subtype", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("outcome_desc", sa.String(length=512), nullable=True),
        sa.Column("agent_type", sa.String(length=16), nullable=False),
        sa.Column("agent_who", sa.String(length=512), nullable=False),
        sa.Column("agent_user", sa.String(length=256), nullable=True),
        sa.Column("tenant", sa.String(length=256), nullable=True),
        sa.Column("patient_id", sa.String(length=256), nullable=True),
        sa.Column("entities", JSON, nullable=False),
        sa.Column("hook_instance", sa.String(length=128), nullable=True),
        sa.Column("control_id", sa.String(length=64), nullable=True),
        sa.Column("purpose_of_use", sa.String(length=64), nullable=True),
        sa.Column("source_observer", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("action IN ('C','R','U','D','E')", name=op.f("ck_audit_records_action")),
        sa.CheckConstraint("outcome IN (0,4,8,12)", name=op.f("ck_audit_records_outcome")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_records")),
        sa.UniqueConstraint("id", name=op.f("uq_audit_records_id")),
        sa.UniqueConstraint("record_hash", name=op.f("uq_audit_records_record_hash")),
    )
    op.create_index(
        "ix_audit_records_patient_recorded", "audit_records", ["patient_id", "recorded"]
    )
    op.create_index("ix_audit_records_agent_recorded", "audit_records", ["agent_who", "recorded"])
    op.create_index("ix_audit_records_recorded", "audit_records", ["recorded"])
    op.create_index("ix_audit_records_request_id", "audit_records", ["request_id"])
    op.create_index("ix_audit_records_hook_instance", "audit_records", ["hook_instance"])
    op.create_index("ix_audit_records_control_id", "audit_records", ["control_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_FN)
        for statement in _TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_truncate ON audit_records")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_update_delete ON audit_records")
        op.execute("DROP FUNCTION IF EXISTS oncocds_audit_records_append_only()")
    op.drop_table("audit_records")
