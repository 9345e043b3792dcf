"""analyses: interpretation and report_bundle as ``json`` on PostgreSQL (were ``jsonb``)

Revision ID: 2026_11_23_0600
Revises: 2026_11_23_0500
Create Date: 2026-11-23

Both are documents stored once and read back whole, never queried inside. ``jsonb`` parsed and
rewrote a ~250 KB report Bundle on every insert (13 ms against 5 ms for ``json``; reading it
back 4 ms against 0.7 ms) and took 1.5x the disk. SQLite stores JSON as text either way, so
nothing changes there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "2026_11_23_0600"
down_revision: str | None = "2026_11_23_0500"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("interpretation", "report_bundle")


def _retype(to: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"ALTER TABLE analyses ALTER COLUMN {column} TYPE {to} USING {column}::{to}")


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
