"""Programmatic Alembic: what ``oncocds db ...`` and the test suite run."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from cds_service.errors import OncoCDSError
from cds_service.settings import ensure_sqlite_directory

#: The project root holds alembic.ini and migrations/ (an editable install; see README).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class MigrationError(OncoCDSError):
    """A migration command failed or the schema drifted from the ORM models."""


def alembic_config(database_url: str) -> Config:
    ini = PROJECT_ROOT / "alembic.ini"
    if not ini.is_file():
        raise MigrationError(
            f"alembic.ini not found at {ini}; install OncoCDS with `pip install -e`"
        )
    config = Config(str(ini))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    ensure_sqlite_directory(database_url)
    try:
        command.upgrade(alembic_config(database_url), revision)
    except CommandError as exc:
        raise MigrationError(f"upgrade to {revision} failed: {exc}") from exc


def downgrade(database_url: str, revision: str) -> None:
    try:
        command.downgrade(alembic_config(database_url), revision)
    except CommandError as exc:
        raise MigrationError(f"downgrade to {revision} failed: {exc}") from exc


def check(database_url: str) -> None:
    """Fail when the ORM models and the migrated schema differ (``alembic check``)."""
    try:
        command.check(alembic_config(database_url))
    except CommandError as exc:
        raise MigrationError(f"schema drift: {exc}") from exc


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    if head is None:
        raise MigrationError("no migrations found")
    return head
