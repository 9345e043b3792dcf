"""Retention archiving as the ``audit.archive`` job (issue 17): the same function as
``oncocds audit archive``, run through the job system; periodic only when a site turns it on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from cds_service.audit import AuditTrail
from cds_service.audit.checkpoints import seal, verify_integrity
from cds_service.audit.signing import Keyring, signer_for
from cds_service.db.base import utcnow
from cds_service.db.engine import make_engine
from cds_service.jobs import enqueue, load_kinds, tick_schedules
from cds_service.models.audit import AuditRecord
from cds_service.models.jobs import BackgroundJob
from cds_service.settings import Settings
from tests.cds_service.test_audit_checkpoints import _fill
from tests.support.jobs import run_due

OLD = datetime.now(UTC) - timedelta(days=3000)  # outside the default six-year window


@pytest.fixture
def settings(compliance_settings: Settings) -> Settings:
    """Own signing key, archive directory under tmp_path, no periodic sealing."""
    return compliance_settings


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def _run_maintenance(engine: Engine, settings: Settings) -> list[BackgroundJob]:
    sessions = sessionmaker(engine, expire_on_commit=False)
    run_due(sessions, settings, queues=["maintenance"])
    with sessions() as session:
        return list(
            session.scalars(select(BackgroundJob).where(BackgroundJob.kind == "audit.archive"))
        )


def test_the_job_archives_what_is_past_retention_and_the_rest_verifies(
    engine: Engine, settings: Settings
) -> None:
    trail = AuditTrail(engine, source_observer="test")
    signer = signer_for(settings.audit.signing_key_path, development=True)
    _fill(trail, 5, recorded=OLD)
    seal(engine, signer)  # one checkpoint of old records only
    _fill(trail, 3)  # recent: must stay
    load_kinds()
    sessions = sessionmaker(engine)
    with sessions() as session, session.begin():
        enqueue(session, kind="audit.archive", key="retention-test", payload={})
    (job,) = _run_maintenance(engine, settings)
    assert job.status == "succeeded", job.last_error
    assert job.result is not None
    assert (job.result["records"], job.result["firstSeq"], job.result["throughSeq"]) == (5, 1, 5)
    (archive_file,) = settings.audit.archive_dir.glob("audit-archive-1-5-*.jsonl")
    assert job.result["file"] == archive_file.name
    with engine.connect() as conn:
        seqs = list(conn.execute(select(AuditRecord.seq).order_by(AuditRecord.seq)).scalars())
        events = [
            r for r in trail.iter_rows(conn, from_seq=6) if r["event_type"] == "audit.archive"
        ]
    assert seqs[0] == 6  # the old records left the table, the recent ones stayed
    assert events[0]["agent_who"] == "job:audit.archive"
    assert events[0]["details"]["sha256"] == job.result["sha256"]
    assert verify_integrity(engine, Keyring([signer.public_key])).ok


def test_the_job_never_archives_inside_the_retention_window(
    engine: Engine, settings: Settings
) -> None:
    trail = AuditTrail(engine, source_observer="test")
    signer = signer_for(settings.audit.signing_key_path, development=True)
    _fill(trail, 4)  # recent only
    seal(engine, signer)
    load_kinds()
    with sessionmaker(engine)() as session, session.begin():
        enqueue(session, kind="audit.archive", key="retention-test", payload={})
    (job,) = _run_maintenance(engine, settings)
    assert job.status == "succeeded", job.last_error
    assert job.result is not None
    assert (job.result["records"], job.result["file"]) == (0, None)
    assert list(settings.audit.archive_dir.glob("*.jsonl")) == []
    with Session(engine) as session:
        assert session.scalar(select(AuditRecord.seq).order_by(AuditRecord.seq).limit(1)) == 1


@pytest.mark.parametrize(("interval", "expected"), [(0, 0), (3600, 1)])
def test_it_is_periodic_only_when_turned_on(
    engine: Engine, settings: Settings, interval: int, expected: int
) -> None:
    settings = settings.model_copy(
        update={"audit": settings.audit.model_copy(update={"archive_interval_seconds": interval})}
    )
    load_kinds()
    sessions = sessionmaker(engine)
    t0 = utcnow()
    tick_schedules(sessions, settings, now=t0)  # the first run is one interval later
    tick_schedules(sessions, settings, now=t0 + timedelta(seconds=interval + 1))
    with sessions() as session:
        queued = session.scalars(
            select(BackgroundJob).where(BackgroundJob.kind == "audit.archive")
        ).all()
    assert len(queued) == expected
