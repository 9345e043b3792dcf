"""Shared fixtures: settings and app factories, and databases on both supported backends.

Database tests take the ``database_url`` fixture, which runs each test twice: on a migrated
SQLite file and on a fresh PostgreSQL database (cloned from a migrated template, so each test
starts clean even though ``audit_records`` refuses DELETE). PostgreSQL comes from
``ONCOCDS_TEST_DATABASE_URL``; under CI (``CI=true``) it is required and an unreachable server
fails the run, elsewhere the PostgreSQL half is skipped with a one-line reason.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from cds_service.app import create_app
from cds_service.db import migrate
from cds_service.db.testing import create_database, drop_database
from cds_service.settings import Settings

IN_CI = os.environ.get("CI") == "true"
PG_SERVER_URL = os.environ.get("ONCOCDS_TEST_DATABASE_URL") or (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test" if IN_CI else None
)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _postgres_reachable(url: str) -> str | None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        return str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head, used as a template for per-test clones."""
    if PG_SERVER_URL is None:
        pytest.skip("PostgreSQL: set ONCOCDS_TEST_DATABASE_URL to run (required under CI)")
    problem = _postgres_reachable(PG_SERVER_URL)
    if problem is not None:
        message = f"PostgreSQL at ONCOCDS_TEST_DATABASE_URL unreachable: {problem}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    name = f"oncocds_tpl_{uuid.uuid4().hex[:10]}"
    url = create_database(PG_SERVER_URL, name)
    try:
        migrate.upgrade(url, "head")
        yield name
    finally:
        drop_database(PG_SERVER_URL, name)


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    assert PG_SERVER_URL is not None
    name = f"oncocds_t_{uuid.uuid4().hex[:12]}"
    url = create_database(PG_SERVER_URL, name, template=pg_template)
    try:
        yield url
    finally:
        drop_database(PG_SERVER_URL, name)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}", "head")
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite database file for one test."""
    path = tmp_path / "oncocds.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.db)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated database; the test runs once per backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Build explicit settings; keyword arguments override the test defaults."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "development",
            "database_url": f"sqlite:///{tmp_path / 'unused.db'}",
            "public_base_url": "http://testserver",
            "instance_id": "oncocds-test",
        }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def secure_production_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Production settings with every secure-start prerequisite present (tests then change one).

    The key files only need to exist for ``check_secure``; tests that use them write real keys.
    """
    signing_key = tmp_path / "audit-key.pem"
    signing_key.write_text("placeholder: only its presence is checked by check_secure\n")
    jwks = tmp_path / "oidc-jwks.json"
    jwks.write_text('{"keys": []}')
    clients = tmp_path / "clients.toml"
    if not clients.exists():
        clients.write_text("[[clients]]\n")
    values: dict[str, Any] = {
        "environment": "production",
        "public_base_url": "https://cds.example.org",
        "database_url": "postgresql://oncocds@db.invalid/oncocds",
        "clients_file": clients,
        "reports": {"secret": "a-long-random-report-link-secret"},
        "audit": {"signing_key_path": signing_key},
        "compliance": {"oidc_issuer": "https://idp.example.org", "jwks_file": jwks},
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave artefacts a human may want to look at (screenshots, reports)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
