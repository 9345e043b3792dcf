"""``make test`` step: upgrade head, ``alembic check``, down to base and up again, on SQLite and
on PostgreSQL (``ONCOCDS_TEST_DATABASE_URL``; required under CI, skipped with a reason outside).

Each run uses a throwaway database: a temporary SQLite file, and a fresh PostgreSQL database
created on the given server and dropped afterwards.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from cds_service.db import migrate
from cds_service.db.testing import temporary_postgres_database


def _cycle(url: str, label: str) -> None:
    migrate.upgrade(url, "head")
    migrate.check(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url, "head")
    migrate.check(url)
    print(f"migrations: {label}: upgrade head, check, downgrade base, upgrade head, check: ok")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        _cycle(f"sqlite:///{Path(tmp) / 'check.db'}", "sqlite")
    server_url = os.environ.get("ONCOCDS_TEST_DATABASE_URL")
    if not server_url:
        if os.environ.get("CI") == "true":
            print("migrations: ONCOCDS_TEST_DATABASE_URL is required under CI", file=sys.stderr)
            return 1
        print("migrations: postgresql: skipped (set ONCOCDS_TEST_DATABASE_URL to run)")
        return 0
    with temporary_postgres_database(server_url, prefix="oncocds_migcheck") as url:
        _cycle(url, "postgresql")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except migrate.MigrationError as exc:
        print(f"migrations: {exc}", file=sys.stderr)
        sys.exit(1)
