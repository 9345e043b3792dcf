"""Engine construction for the two supported databases (SQLite embedded, PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import ConnectionPoolEntry

from cds_service.settings import ensure_sqlite_directory


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits; busy_timeout makes concurrent writers
    # wait instead of failing at once; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def json_dumps(value: Any) -> str:
    """JSON for JSON/JSONB columns: orjson (an analysis row holds a ~250 KB report Bundle; the
    standard library took 3-5 ms per row on the request path), the standard library for what
    orjson refuses (integers beyond 64 bits, non-string keys)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value)


def json_loads(text: str | bytes) -> Any:
    """The reverse: orjson, the standard library for what orjson refuses to read (``NaN``,
    which the standard library wrote into SQLite rows before orjson did the writing)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


#: How every engine reads and writes JSON columns.
_JSON_CODEC: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": json_loads}


def make_engine(database_url: str, *, pool_size: int = 10, pre_ping: bool = True) -> Engine:
    """Create an engine with the settings OncoCDS relies on for ``database_url``.

    ``pre_ping=False`` saves a round trip per checkout for latency-bound writers that answer a
    failed write themselves (the MLLP listener replies AE and the sender resends).
    """
    if database_url.startswith("sqlite"):
        ensure_sqlite_directory(database_url)
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False},
            **_JSON_CODEC,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    return create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        **_JSON_CODEC,
    )
