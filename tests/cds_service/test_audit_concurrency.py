"""The chain stays linear with concurrent writers in several processes (issue #2, item 6)."""

from __future__ import annotations

import itertools
import multiprocessing as mp

import pytest

from cds_service.audit import AuditTrail
from cds_service.db.engine import make_engine

WRITERS = 6
PER_WRITER = 60


def _writer(database_url: str, writer: int, start: mp.synchronize.Barrier) -> None:
    engine = make_engine(database_url, pool_size=1)
    trail = AuditTrail(engine, source_observer=f"writer-{writer}")
    start.wait()
    for i in range(PER_WRITER):
        trail.record(
            action="C",
            event_type="test.concurrent",
            agent_type="system",
            agent_who=f"writer-{writer}",
            request_id=f"{writer}-{i}",
        )
    engine.dispose()


@pytest.mark.slow
def test_concurrent_writers_keep_one_valid_chain(database_url: str) -> None:
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=_writer, args=(database_url, w, start)) for w in range(WRITERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0
    engine = make_engine(database_url)
    trail = AuditTrail(engine, source_observer="checker")
    result = trail.verify()
    assert result.ok, result.first_break
    assert result.checked == WRITERS * PER_WRITER
    assert result.last_seq == WRITERS * PER_WRITER
    with trail.engine.connect() as conn:
        request_ids = {row["request_id"] for row in trail.iter_rows(conn)}
    assert len(request_ids) == WRITERS * PER_WRITER
    # The writers really interleaved: not every process wrote one contiguous block.
    with trail.engine.connect() as conn:
        observers = [row["source_observer"] for row in trail.iter_rows(conn)]
    engine.dispose()
    switches = sum(1 for a, b in itertools.pairwise(observers) if a != b)
    assert switches > WRITERS
