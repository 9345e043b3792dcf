"""Throwaway PostgreSQL databases for tests, migration checks and benchmarks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, make_url, text

from cds_service.settings import normalise_database_url


def _admin_engine(server_url: str) -> Engine:
    return create_engine(normalise_database_url(server_url), isolation_level="AUTOCOMMIT")


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` on the server of ``server_url``; return its URL."""
    engine = _admin_engine(server_url)
    try:
        with engine.connect() as conn:
            clause = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    finally:
        engine.dispose()
    url = make_url(normalise_database_url(server_url)).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    engine = _admin_engine(server_url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@contextmanager
def temporary_postgres_database(
    server_url: str, *, prefix: str = "oncocds_tmp", template: str | None = None
) -> Iterator[str]:
    """A fresh database on ``server_url``'s server for the duration of the block."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, name, template=template)
    try:
        yield url
    finally:
        drop_database(server_url, name)
