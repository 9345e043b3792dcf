"""``oncocds db upgrade|downgrade|check|head``.

Handlers import Alembic and the settings themselves, so declaring the commands loads neither.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("db", help="database migrations (ONCOCDS_DATABASE_URL)")
    db_sub = parser.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="migrate to a revision (default: head)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_upgrade)
    down = db_sub.add_parser("downgrade", help="migrate down to a revision (e.g. base)")
    down.add_argument("revision")
    down.set_defaults(func=_downgrade)
    check = db_sub.add_parser("check", help="fail if the schema differs from the models")
    check.set_defaults(func=_check)
    head = db_sub.add_parser("head", help="print the newest migration revision")
    head.set_defaults(func=_head)


def _upgrade(args: argparse.Namespace) -> int:
    from cds_service.db import migrate
    from cds_service.settings import Settings

    settings = Settings()
    migrate.upgrade(settings.database_url, args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from cds_service.db import migrate
    from cds_service.settings import Settings

    settings = Settings()
    migrate.downgrade(settings.database_url, args.revision)
    print(f"database migrated down to {args.revision}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from cds_service.db import migrate
    from cds_service.settings import Settings

    migrate.check(Settings().database_url)
    print("schema matches the models")
    return 0


def _head(args: argparse.Namespace) -> int:
    from cds_service.db import migrate

    print(migrate.head_revision())
    return 0
