"""Audit trail at scale, each figure beside a baseline measured in the same run (PostgreSQL).

1. Append rate with the hash chain under 8 concurrent writer processes vs plain single-row
   INSERTs by 8 processes (same table, same row shape, one transaction per row either way).
2. Verification speed (chain + signed Merkle checkpoints, records/s) vs a plain SELECT scan of
   the same rows into dicts.
3. Search latency on 1,000,000 records (generated with one INSERT … SELECT generate_series;
   their hashes are placeholders, so verification is measured on the smaller set of 2.) for the
   compliance filters with keyset paging vs an unfiltered ``ORDER BY seq DESC LIMIT 50``.

Needs ONCOCDS_TEST_DATABASE_URL; each part runs on a throwaway database. ``BENCH_AUDIT_ROWS``
overrides the 1 M (e.g. for a quick run).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, insert, select, text

from cds_service.audit import AuditTrail
from cds_service.audit.chain import GENESIS_HASH, chain_hash
from cds_service.audit.checkpoints import seal, verify_integrity
from cds_service.audit.signing import CheckpointSigner, Keyring
from cds_service.compliance.repository import AuditFilter, AuditRepository
from cds_service.db import migrate
from cds_service.db.base import utcnow
from cds_service.db.engine import make_engine
from cds_service.db.testing import temporary_postgres_database
from cds_service.models.audit import AuditRecord

WRITERS = 8
PER_WRITER = 250
VERIFY_ROWS = 100_000
SEARCH_ROWS = int(os.environ.get("BENCH_AUDIT_ROWS", "1000000"))
REPEATS = 15


def _chained_writer(url: str, writer: int, start: Any, n: int) -> None:
    engine = make_engine(url, pool_size=1)
    trail = AuditTrail(engine, source_observer=f"w{writer}")
    start.wait()
    for i in range(n):
        trail.record(
            action="R",
            event_type="cds-hooks.call",
            agent_who=f"https://ehr-{writer}.example.org",
            patient_id=f"Patient/p{i % 50}",
            request_id=f"{writer}-{i}",
        )
    engine.dispose()


def _plain_writer(url: str, writer: int, start: Any, n: int) -> None:
    engine = make_engine(url, pool_size=1)
    start.wait()
    for i in range(n):
        with engine.begin() as conn:
            conn.execute(
                insert(AuditRecord),
                [
                    {
                        "seq": 10_000_000 + writer * 100_000 + i,
                        "id": str(uuid.uuid4()),
                        "recorded": utcnow(),
                        "action": "R",
                        "event_type": "cds-hooks.call",
                        "outcome": 0,
                        "agent_type": "client",
                        "agent_who": f"https://ehr-{writer}.example.org",
                        "patient_id": f"Patient/p{i % 50}",
                        "request_id": f"{writer}-{i}",
                        "entities": [],
                        "source_observer": f"w{writer}",
                        "details": {},
                        "prev_hash": GENESIS_HASH,
                        "record_hash": uuid.uuid4().hex * 2,
                    }
                ],
            )
    engine.dispose()


def _concurrent(url: str, target: Callable[..., None]) -> float:
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(WRITERS + 1)
    procs = [ctx.Process(target=target, args=(url, w, start, PER_WRITER)) for w in range(WRITERS)]
    for proc in procs:
        proc.start()
    start.wait()
    began = time.perf_counter()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError("a writer failed")
    return WRITERS * PER_WRITER / (time.perf_counter() - began)


def bench_append(server: str) -> None:
    with temporary_postgres_database(server, prefix="oncocds_bench_append") as url:
        migrate.upgrade(url, "head")
        chained = _concurrent(url, _chained_writer)
        plain = _concurrent(url, _plain_writer)
        engine = make_engine(url)
        ok = AuditTrail(engine, source_observer="b").verify(to_seq=WRITERS * PER_WRITER).ok
        engine.dispose()
    print(
        f"append, {WRITERS} writer processes: chained {chained:,.0f} records/s; plain INSERT "
        f"{plain:,.0f} rows/s; ratio {chained / plain:.2f} (chain valid: {ok})"
    )


def _valid_chain(engine: Engine, n: int) -> None:
    prev, batch = GENESIS_HASH, []
    now = utcnow()
    for i in range(1, n + 1):
        row = {
            "seq": i,
            "id": str(uuid.uuid4()),
            "recorded": now,
            "action": "R",
            "event_type": "cds-hooks.call",
            "event_subtype": None,
            "outcome": 0,
            "outcome_desc": None,
            "agent_type": "client",
            "agent_who": f"https://ehr-{i % 10}.example.org",
            "agent_user": None,
            "tenant": None,
            "patient_id": f"Patient/p{i % 5000}",
            "entities": [{"type": "Observation", "id": f"o{i}"}],
            "hook_instance": None,
            "control_id": None,
            "purpose_of_use": "TREAT",
            "source_observer": "bench",
            "request_id": f"r{i}",
            "remote_addr": None,
            "details": {},
            "prev_hash": prev,
        }
        row["record_hash"] = prev = chain_hash(prev, row)
        batch.append(row)
        if len(batch) == 5000:
            with engine.begin() as conn:
                conn.execute(insert(AuditRecord), batch)
            batch = []
    if batch:
        with engine.begin() as conn:
            conn.execute(insert(AuditRecord), batch)


def bench_verify(server: str) -> None:
    with temporary_postgres_database(server, prefix="oncocds_bench_verify") as url:
        migrate.upgrade(url, "head")
        engine = make_engine(url)
        _valid_chain(engine, VERIFY_ROWS)
        signer = CheckpointSigner.generate()
        seal(engine, signer, max_records=10_000)
        trail = AuditTrail(engine, source_observer="bench")
        began = time.perf_counter()
        report = verify_integrity(engine, Keyring([signer.public_key]))
        verify_rate = report.records_checked / (time.perf_counter() - began)
        began = time.perf_counter()
        with engine.connect() as conn:
            scanned = sum(1 for _ in trail.iter_rows(conn))
        scan_rate = scanned / (time.perf_counter() - began)
        engine.dispose()
    print(
        f"verify {report.records_checked:,} records ({report.checkpoints_checked} checkpoints, "
        f"ok={report.ok}): {verify_rate:,.0f} records/s; plain SELECT scan {scan_rate:,.0f} "
        f"rows/s; ratio {verify_rate / scan_rate:.2f}"
    )


_GENERATE = """
INSERT INTO audit_records (seq, id, recorded, action, event_type, outcome, agent_type,
    agent_who, agent_user, patient_id, entities, hook_instance, control_id, purpose_of_use,
    source_observer, request_id, details, prev_hash, record_hash)
SELECT g,
       md5(g::text)::uuid::text,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '2 minutes',
       (ARRAY['R','R','R','C','E'])[1 + g % 5],
       (ARRAY['cds-hooks.call','fhir.read','hl7.received','report.view','fhir.write',
              'audit.query'])[1 + g % 6],
       CASE WHEN g % 50 = 0 THEN 4 ELSE 0 END,
       'client',
       'https://ehr-' || (g % 10) || '.example.org',
       'Practitioner/' || (g % 500),
       'Patient/p' || (g % 20000),
       '[]'::jsonb,
       md5('h' || g),
       CASE WHEN g % 6 = 2 THEN 'MSG' || g END,
       'TREAT',
       'bench',
       'req-' || g,
       '{}'::jsonb,
       encode(sha256(((g - 1)::text)::bytea), 'hex'),
       encode(sha256((g::text)::bytea), 'hex')
FROM generate_series(1, :n) AS g
"""


def _latency(fn: Callable[[], Any]) -> float:
    fn()  # warm
    samples = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def bench_search(server: str) -> None:
    with temporary_postgres_database(server, prefix="oncocds_bench_search") as url:
        migrate.upgrade(url, "head")
        engine = make_engine(url)
        began = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text(_GENERATE), {"n": SEARCH_ROWS})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE audit_records"))
        print(f"generated {SEARCH_ROWS:,} records in {time.perf_counter() - began:.1f} s")
        repo = AuditRepository(engine)

        def baseline() -> None:
            with engine.connect() as conn:
                conn.execute(
                    select(AuditRecord.__table__).order_by(AuditRecord.seq.desc()).limit(50)
                ).all()

        base_ms = _latency(baseline)
        deep_cursor = SEARCH_ROWS // 2
        cases: list[tuple[str, AuditFilter, int | None]] = [
            ("patient", AuditFilter(patient="Patient/p4242"), None),
            ("patient, page from the middle", AuditFilter(patient="Patient/p4242"), deep_cursor),
            ("agent (client)", AuditFilter(agent="https://ehr-3.example.org"), None),
            ("agent (user)", AuditFilter(agent="Practitioner/77"), None),
            ("event type", AuditFilter(event_type="hl7.received"), None),
            ("outcome 4 (refusals)", AuditFilter(outcome=4), None),
            (
                "time range (1 day)",
                AuditFilter(
                    since=_ts("2020-06-01T00:00:00+00:00"), until=_ts("2020-06-02T00:00:00+00:00")
                ),
                None,
            ),
            (
                "patient + time range (1 year)",
                AuditFilter(
                    patient="Patient/p4242",
                    since=_ts("2021-01-01T00:00:00+00:00"),
                    until=_ts("2022-01-01T00:00:00+00:00"),
                ),
                None,
            ),
            ("request id", AuditFilter(request_id="req-777777"), None),
            ("MSH-10", AuditFilter(control_id="MSG500000"), None),
            ("hookInstance", AuditFilter(hook_instance=_md5("h123456")), None),
        ]
        print(f"baseline unfiltered ORDER BY seq DESC LIMIT 50: {base_ms:.2f} ms (median)")
        for label, flt, cursor in cases:
            rows: list[Any] = []

            def run(
                flt: AuditFilter = flt, cursor: int | None = cursor, rows: list[Any] = rows
            ) -> None:
                rows[:] = repo.search(flt, cursor=cursor, limit=50)[0]

            ms = _latency(run)
            print(
                f"  search {label}: {ms:.2f} ms for {len(rows)} rows (median); "
                f"ratio to baseline {ms / base_ms:.1f}"
            )
        engine.dispose()


def _md5(value: str) -> str:
    return hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()


def _ts(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)


def main() -> None:
    server = os.environ.get("ONCOCDS_TEST_DATABASE_URL")
    if not server:
        print("bench_audit: skipped (set ONCOCDS_TEST_DATABASE_URL)")
        return
    bench_append(server)
    bench_verify(server)
    bench_search(server)
