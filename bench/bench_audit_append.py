"""Audit append rate with the hash chain vs a plain INSERT of the same rows (same DB, same run).

Uses SQLite in a temp dir, and PostgreSQL too when ONCOCDS_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert

from cds_service.audit import AuditTrail
from cds_service.db import migrate
from cds_service.db.base import utcnow
from cds_service.db.engine import make_engine
from cds_service.db.testing import temporary_postgres_database
from cds_service.models.audit import AuditRecord

N = 2000


def _run(url: str, label: str) -> None:
    migrate.upgrade(url, "head")
    engine = make_engine(url)
    trail = AuditTrail(engine, source_observer="bench")
    started = time.perf_counter()
    for i in range(N):
        trail.record(action="R", event_type="bench", agent_who="bench", request_id=str(i))
    chained = N / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(N):
        with engine.begin() as conn:
            conn.execute(
                insert(AuditRecord),
                [
                    {
                        "seq": 10_000_000 + i,
                        "id": str(uuid.uuid4()),
                        "recorded": utcnow(),
                        "action": "R",
                        "event_type": "baseline",
                        "outcome": 0,
                        "agent_type": "system",
                        "agent_who": "bench",
                        "entities": [],
                        "source_observer": "bench",
                        "details": {},
                        "prev_hash": "0" * 64,
                        "record_hash": uuid.uuid4().hex * 2,
                    }
                ],
            )
    plain = N / (time.perf_counter() - started)
    engine.dispose()
    print(
        f"{label}: chained append {chained:,.0f} records/s; plain insert {plain:,.0f} rows/s; "
        f"ratio {chained / plain:.2f}"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite")
    server = os.environ.get("ONCOCDS_TEST_DATABASE_URL")
    if server:
        with temporary_postgres_database(server, prefix="oncocds_bench") as url:
            _run(url, "postgresql")
    else:
        print("postgresql: skipped (set ONCOCDS_TEST_DATABASE_URL)")
