"""writeback_jobs.claimed_by: who holds a write-back round's claim (issue 17)

Revision ID: 2026_12_04_1510
Revises: 2026_12_04_1500
Create Date: 2026-12-04

A round claims its write-back job with a lease (``next_attempt``). When the holder was the
``writeback.round`` job of a worker that was SIGKILLed, the job system runs that round job again
at once (its own claim is fenced), but the write-back job stayed claimed until the lease ran out
(2 x the HTTP timeout + backoff + 30 s), so the round was retried and retried with backoff. The
owner names the round job's claim (``round:<job id>:<attempt>``): a later attempt of the same
round job takes the write-back over, and an earlier one can no longer record an outcome.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_12_04_1510"
down_revision: str | None = "2026_12_04_1500"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("writeback_jobs", sa.Column("claimed_by", sa.String(length=160), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("writeback_jobs") as batch:
        batch.drop_column("claimed_by")
