"""HL7 processing on a real database, driven as the ``hl7`` queue's executor drives it (the
``hl7.process`` jobs stored with each message): processing, retries, failures, replay, and
claims that exclude each other (two workers on PostgreSQL never process one message twice)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from cds_service.audit import AuditTrail
from cds_service.db.base import utcnow
from cds_service.errors import ConflictError
from cds_service.hl7.processing import (
    GeneticResultProcessor,
    InboundMessage,
    ProcessingResult,
    TransientProcessingError,
)
from cds_service.hl7.repository import InboxRepository, NewMessage
from cds_service.hl7.service import replay
from cds_service.hl7.worker import Worker
from cds_service.models.audit import AuditRecord
from cds_service.models.hl7 import Hl7InboxMessage
from cds_service.models.jobs import BackgroundJob
from cds_service.settings import Hl7Settings
from tests.hl7_support import data_file, make_oru, run_hl7_jobs

SETTINGS = Hl7Settings(worker_in_process=False, retry_base_seconds=60, max_attempts=3)


def _store(repo: InboxRepository, raw: bytes, control_id: str, *, status: str = "received") -> int:
    return repo.store(
        NewMessage(
            sending_application="MOLPATH_LIS",
            sending_facility="EXAMPLE_LAB",
            control_id=control_id,
            message_type="ORU^R01^ORU_R01",
            version="2.5.1",
            charset="utf-8",
            accept_ack_type="",
            application_ack_type="",
            raw=raw,
            received_at=utcnow(),
            remote_addr="127.0.0.1",
            status=status,
            last_error=None,
            ack=b"MSH|...",
        )
    ).id


def _row(engine: Engine, message_id: int) -> Hl7InboxMessage:
    with Session(engine) as session:
        row = session.get(Hl7InboxMessage, message_id)
        assert row is not None
        session.expunge(row)
    return row


def _worker(engine: Engine, processor: object | None = None, name: str = "w") -> Worker:
    return Worker(
        InboxRepository(engine),
        processor or GeneticResultProcessor(),  # type: ignore[arg-type]
        SETTINGS,
        audit=AuditTrail(engine, source_observer="test"),
        name=name,
    )


def test_genetic_result_is_processed_into_a_variant_summary(engine: Engine) -> None:
    repo = InboxRepository(engine)
    message_id = _store(repo, data_file("oru_r01_braf_pik3ca.hl7"), "LAB0000003")
    assert run_hl7_jobs(engine, _worker(engine)) == 1
    row = _row(engine, message_id)
    assert row.status == "processed"
    assert row.attempts == 1
    assert row.result is not None
    assert [(v["gene"], v["proteinChange"], v["position"]) for v in row.result["variants"]] == [
        ("BRAF", "V600E", "GRCh38:7:140753336:A:T"),
        ("PIK3CA", "H1047R", "GRCh38:3:179234297:A:G"),
    ]
    assert row.result["patient"]["id"] == "MRN12345"
    # The test message names no diagnosis: said, not guessed.
    assert row.result["tumourType"] == {
        "code": None,
        "name": "tumour type unknown",
        "source": None,
    }
    assert row.result["patient"]["assigningAuthority"] == "EXAMPLE_HOSP"
    assert run_hl7_jobs(engine, _worker(engine)) == 0  # nothing left: processed once
    with engine.connect() as conn:
        events = conn.execute(
            select(AuditRecord.event_type, AuditRecord.control_id, AuditRecord.details)
        ).all()
    assert [(e.event_type, e.control_id) for e in events] == [("hl7.processed", "LAB0000003")]
    assert "MRN12345" not in str(events)


def test_genetic_result_is_interpreted_and_its_report_stored(engine: Engine) -> None:
    """ORU^R01 → variants → interpretation → stored analysis with a Genomics report Bundle."""
    from cds_service.models.analysis import Analysis
    from integrations.fhir.genomics_profiles import check_bundle

    repo = InboxRepository(engine)
    message_id = _store(repo, data_file("oru_r01_braf_v600e.hl7"), "LAB0000009")
    assert run_hl7_jobs(engine, _worker(engine)) == 1
    row = _row(engine, message_id)
    assert row.status == "processed"
    assert row.result is not None
    analysis_id = row.result["analysisId"]
    assert row.result["therapeuticFindings"] > 0
    with Session(engine) as session:
        analysis = session.get(Analysis, analysis_id)
        assert analysis is not None
        assert analysis.source_kind == "hl7"
        assert analysis.patient_ref.startswith("Patient?identifier=")
        assert analysis.patient_ref.endswith("|MRN12345")
        bundle = analysis.report_bundle
    assert check_bundle(bundle) == []
    text = str(bundle)
    assert "BRAF" in text
    assert "dabrafenib" in text  # tumour-agnostic BRAF V600E approval (no diagnosis in the ORU)


def test_enhanced_mode_application_ack_is_built(engine: Engine) -> None:
    repo = InboxRepository(engine)
    message_id = _store(repo, make_oru("APP1", accept_ack="AL", app_ack="AL"), "APP1")
    run_hl7_jobs(engine, _worker(engine))
    row = _row(engine, message_id)
    assert row.application_ack is not None
    assert b"\rMSA|AA|APP1" in row.application_ack


def test_non_genetic_oru_is_not_processed(engine: Engine) -> None:
    raw = (
        b"MSH|^~\\&|A|B|C|D|2026||ORU^R01^ORU_R01|GLU1|P|2.5.1\r"
        b"PID|1||P1^^^H^MR\rOBR|1|O1|F1|2345-7^Glucose^LN\rOBX|1|NM|2345-7^Glucose^LN||5.4\r"
    )
    message_id = _store(InboxRepository(engine), raw, "GLU1")
    run_hl7_jobs(engine, _worker(engine))
    row = _row(engine, message_id)
    assert row.status == "not-processed"
    assert row.last_error is not None
    assert "81247-9" in row.last_error


class _Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def process(self, message: InboundMessage, session: Session) -> ProcessingResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise TransientProcessingError("FHIR server unavailable")
        return ProcessingResult(status="processed", summary={"ok": True})


def _make_due(engine: Engine, message_id: int) -> None:
    """Time passes: the message's retry and its job's are due."""
    past = utcnow() - timedelta(seconds=1)
    with engine.begin() as conn:
        conn.execute(
            update(Hl7InboxMessage)
            .where(Hl7InboxMessage.id == message_id)
            .values(next_attempt_at=past)
        )
        conn.execute(
            update(BackgroundJob)
            .where(BackgroundJob.status.in_(("queued", "failed")))
            .values(next_attempt_at=past)
        )


def _job(engine: Engine) -> BackgroundJob:
    with Session(engine) as session:
        (job,) = session.scalars(select(BackgroundJob).where(BackgroundJob.kind == "hl7.process"))
        session.expunge(job)
    return job


def test_transient_errors_are_retried_with_backoff(engine: Engine) -> None:
    message_id = _store(InboxRepository(engine), make_oru("R1"), "R1")
    flaky = _Flaky(failures=1)
    worker = _worker(engine, flaky)
    before = utcnow()
    run_hl7_jobs(engine, worker)
    row = _row(engine, message_id)
    assert (row.status, row.attempts, row.last_error) == ("received", 1, "FHIR server unavailable")
    assert row.next_attempt_at is not None
    assert row.next_attempt_at >= before + timedelta(seconds=60)
    # The job waits as the message does: the HL7 retry policy (retry_base_seconds=60), not
    # the job kind's own backoff (base 2 s).
    job = _job(engine)
    assert (job.status, job.attempts) == ("failed", 1)
    assert job.next_attempt_at - job.updated_at >= timedelta(seconds=0.5)
    assert job.next_attempt_at - job.updated_at >= timedelta(seconds=59)
    assert run_hl7_jobs(engine, worker, now=job.updated_at) == 0  # not due yet
    _make_due(engine, message_id)
    run_hl7_jobs(engine, worker)
    row = _row(engine, message_id)
    assert (row.status, row.attempts) == ("processed", 2)


def test_transient_errors_fail_after_max_attempts_then_replay(engine: Engine) -> None:
    repo = InboxRepository(engine)
    message_id = _store(repo, make_oru("R2"), "R2")
    worker = _worker(engine, _Flaky(failures=100))
    for _ in range(SETTINGS.max_attempts):
        _make_due(engine, message_id)
        run_hl7_jobs(engine, worker)
    row = _row(engine, message_id)
    assert row.status == "failed"
    assert row.last_error is not None
    assert "gave up after 3 attempts" in row.last_error
    trail = AuditTrail(engine, source_observer="test")
    replay(repo, trail, message_id, agent_who="test")
    run_hl7_jobs(engine, _worker(engine, _Flaky(failures=0)))
    assert _row(engine, message_id).status == "processed"
    with pytest.raises(ConflictError):
        replay(repo, trail, message_id, agent_who="test")
    replay(repo, trail, message_id, agent_who="test", force=True)
    assert _row(engine, message_id).status == "received"


def test_undecodable_message_fails_and_replays_after_configuration_fix(engine: Engine) -> None:
    repo = InboxRepository(engine)
    raw = make_oru("CS9", charset="", patient_name="MÜLLER", encoding="latin-1")
    message_id = _store(repo, raw, "CS9", status="failed")
    replay(repo, AuditTrail(engine, source_observer="test"), message_id, agent_who="test")
    run_hl7_jobs(engine, _worker(engine))
    row = _row(engine, message_id)
    assert row.status == "failed"
    assert row.last_error is not None
    assert "MÜLLER" not in row.last_error
    replay(repo, AuditTrail(engine, source_observer="test"), message_id, agent_who="test")
    latin = Worker(
        repo,
        GeneticResultProcessor(),
        Hl7Settings(fallback_charsets=("iso8859-1",)),
        audit=AuditTrail(engine, source_observer="test"),
    )
    run_hl7_jobs(engine, latin)
    assert _row(engine, message_id).status == "processed"


def test_expired_claim_is_taken_over_and_the_stale_worker_cannot_overwrite(
    engine: Engine,
) -> None:
    repo = InboxRepository(engine)
    message_id = _store(repo, make_oru("L1"), "L1")
    stale, _ = repo.claim_one(message_id, now=utcnow(), lease=timedelta(seconds=-1))
    fresh, _ = repo.claim_one(message_id, now=utcnow(), lease=timedelta(minutes=5))
    assert stale is not None
    assert fresh is not None
    assert (stale.id, fresh.id) == (message_id, message_id)
    assert fresh.attempts == stale.attempts + 1
    with Session(engine) as session:
        assert not repo.finish(session, stale, status="failed", now=utcnow(), last_error="x")
        session.commit()
    with Session(engine) as session:
        assert repo.finish(session, fresh, status="processed", now=utcnow())
        session.commit()
    assert _row(engine, message_id).status == "processed"


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[int] = []
        self.lock = threading.Lock()

    def process(self, message: InboundMessage, session: Session) -> ProcessingResult:
        with self.lock:
            self.seen.append(message.inbox_id)
        return ProcessingResult(status="processed")


@pytest.mark.db
def test_two_workers_on_postgresql_never_process_one_message_twice(pg_url: str) -> None:
    from cds_service.db.engine import make_engine

    engine = make_engine(pg_url, pool_size=6)
    try:
        repo = InboxRepository(engine)
        raw = make_oru("X")
        ids = {_store(repo, raw, f"TW{i:04d}") for i in range(300)}
        recorder = _Recorder()
        settings = Hl7Settings()
        workers = [
            Worker(
                repo,
                recorder,
                settings,
                audit=AuditTrail(engine, source_observer="t"),
                name=f"w{n}",
            )
            for n in range(2)
        ]
        per_worker: Counter[int] = Counter()

        def drain(index: int) -> None:
            while count := run_hl7_jobs(engine, workers[index], limit=3, worker_id=f"w{index}"):
                per_worker[index] += count

        threads = [threading.Thread(target=drain, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        counts = Counter(recorder.seen)
        assert set(counts) == ids
        assert max(counts.values()) == 1
        assert per_worker[0] > 0
        assert per_worker[1] > 0  # both really claimed work concurrently
        with engine.connect() as conn:
            statuses = set(conn.execute(select(Hl7InboxMessage.status)).scalars())
        assert statuses == {"processed"}
    finally:
        engine.dispose()
