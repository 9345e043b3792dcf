"""Write-back jobs: retries with backoff, failures recorded and listed, CLI retry, audit.

Runs against the real token endpoint and FHIR endpoint peers (see ``peers.py``) and a real
database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds_service.analyses.repository import claim_writeback_job
from cds_service.analyses.service import store_analysis
from cds_service.app import create_app
from cds_service.cli import main
from cds_service.db.base import utcnow
from cds_service.errors import ConflictError
from cds_service.models import AuditRecord
from cds_service.models.analysis import WritebackJob
from cds_service.settings import Settings
from cds_service.writeback.service import (
    WritebackConfigError,
    WritebackRunner,
    build_client,
    enqueue_writeback,
    run_writeback_in_background,
)
from tests.cds_service.cdshooks.conftest import staff_headers
from tests.cds_service.writeback.conftest import CLIENT_ID, Peers, WritebackSettings
from tests.genomics_examples import ISSUED, braf_crc_interpretation


def _staff(settings: Settings) -> dict[str, str]:
    # The write-back queue is a staff view: an integration token (integration.read).
    return staff_headers(settings, "integration")


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    database_url: str,
    peers: Peers,
    smart_writeback: WritebackSettings,
    tmp_path: Path,
) -> Settings:
    return make_settings(
        database_url=database_url,
        compliance={"dev_key_path": tmp_path / "dev-oidc.json"},
        writeback=smart_writeback(
            peers.fhir_url,
            max_attempts=3,
            backoff_seconds=0.5,
            timeout_seconds=0.5,
            # The sweeper is tested on its own app below; here only the test runs rounds.
            sweep_interval_seconds=0,
        ),
        # Nor does the job executor run write-back rounds behind the test's back.
        jobs={"in_process": False},
    )


class SleepRecorder:
    """Records backoff delays instead of sleeping (tests assert behaviour, not time)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def runner(
    app: FastAPI, client: TestClient, settings: Settings, sleeps: SleepRecorder
) -> Iterator[WritebackRunner]:
    with build_client(settings.writeback) as smart:
        yield WritebackRunner(
            settings.writeback, app.state.sessionmaker, app.state.audit, smart, sleep=sleeps
        )


def _job(app: FastAPI, settings: Settings, patient: str = "Patient/p1") -> str:
    with app.state.sessionmaker.begin() as session:
        analysis = store_analysis(session, braf_crc_interpretation(), patient, "vcf", issued=ISSUED)
        job = enqueue_writeback(session, analysis, settings.writeback)
        assert job is not None
        return job.id


def _attempt_audit(app: FastAPI) -> list[tuple[int, str | None, str | None]]:
    with app.state.sessionmaker() as session:
        rows = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.event_type == "writeback.attempt")
            .order_by(AuditRecord.seq)
        ).all()
        return [(r.outcome, r.event_subtype, r.patient_id) for r in rows]


def test_transient_failures_are_retried_with_backoff(
    app: FastAPI, settings: Settings, runner: WritebackRunner, peers: Peers, sleeps: SleepRecorder
) -> None:
    peers.fhir.script = [503, 429]
    job = runner.run(_job(app, settings))
    assert job.status == "done"
    assert job.attempts == 3
    assert job.last_error is None
    assert sleeps.delays == [0.5, 1.0]
    assert len(peers.fhir.received) == 1
    assert peers.fhir.received[0]["type"] == "transaction"
    assert job.response_locations[0] == "Observation/1/_history/1"
    assert any(loc.startswith("DiagnosticReport/") for loc in job.response_locations)
    assert _attempt_audit(app) == [
        (4, "pending", "Patient/p1"),
        (4, "pending", "Patient/p1"),
        (0, "done", "Patient/p1"),
    ]


def test_exhausted_round_is_failed_listed_and_retryable(
    *,
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    runner: WritebackRunner,
    peers: Peers,
    monkeypatch: pytest.MonkeyPatch,
    key_file: Path,
) -> None:
    peers.fhir.script = [503, 503, 503]
    job_id = _job(app, settings)
    job = runner.run(job_id)
    assert (job.status, job.attempts) == ("failed", 3)
    assert job.last_error == "FHIR server answered 503 (attempts exhausted)"

    listed = client.get(
        "/api/v1/writeback", headers=_staff(settings), params={"status": "failed"}
    ).json()["jobs"]
    assert [(j["id"], j["status"], j["attempts"], j["lastError"]) for j in listed] == [
        (job_id, "failed", 3, "FHIR server answered 503 (attempts exhausted)")
    ]
    assert (
        client.get("/api/v1/writeback", headers=_staff(settings), params={"status": "done"}).json()[
            "jobs"
        ]
        == []
    )
    assert (
        client.get(
            "/api/v1/writeback", headers=_staff(settings), params={"status": "bogus"}
        ).status_code
        == 400
    )

    # The operator retries from the command line once the EHR is back.
    for name, value in {
        "ONCOCDS_DATABASE_URL": settings.database_url,
        "ONCOCDS_WRITEBACK__FHIR_BASE_URL": peers.fhir_url,
        "ONCOCDS_WRITEBACK__TOKEN_URL": peers.token_url,
        "ONCOCDS_WRITEBACK__CLIENT_ID": CLIENT_ID,
        "ONCOCDS_WRITEBACK__PRIVATE_KEY_PATH": str(key_file),
        "ONCOCDS_WRITEBACK__KID": "ec-1",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["writeback", "retry", job_id]) == 0
    done = client.get(
        "/api/v1/writeback", headers=_staff(settings), params={"status": "done"}
    ).json()["jobs"]
    assert [(j["id"], j["attempts"]) for j in done] == [(job_id, 4)]
    assert _attempt_audit(app)[-1] == (0, "done", "Patient/p1")  # the CLI retry is audited
    assert main(["writeback", "retry", job_id]) == 2  # already done: a one-line error


def test_retry_all_failed(
    app: FastAPI, settings: Settings, runner: WritebackRunner, peers: Peers
) -> None:
    peers.fhir.script = [400, 400]
    first, second = _job(app, settings), _job(app, settings, patient="Patient/p2")
    assert runner.run(first).status == "failed"
    assert runner.run(second).status == "failed"
    retried = runner.retry_all_failed()
    assert sorted(j.id for j in retried) == sorted([first, second])
    assert all(j.status == "done" for j in retried)


def test_client_error_fails_at_once(
    app: FastAPI, settings: Settings, runner: WritebackRunner, peers: Peers, sleeps: SleepRecorder
) -> None:
    peers.fhir.script = [422]
    job = runner.run(_job(app, settings))
    assert (job.status, job.attempts, job.last_error) == ("failed", 1, "FHIR server answered 422")
    assert sleeps.delays == []
    assert _attempt_audit(app) == [(8, "failed", "Patient/p1")]


def test_timeouts_and_token_outage_are_recorded(
    app: FastAPI, settings: Settings, runner: WritebackRunner, peers: Peers
) -> None:
    peers.token.fail_with = [503]
    peers.fhir.script = ["stall"]
    peers.fhir.stall_seconds = 2.0
    job = runner.run(_job(app, settings))
    assert job.status == "done"
    assert job.attempts == 3
    details = _attempt_audit(app)
    assert [d[1] for d in details] == ["pending", "pending", "done"]
    with app.state.sessionmaker() as session:
        descs = session.scalars(
            select(AuditRecord.outcome_desc)
            .where(AuditRecord.event_type == "writeback.attempt")
            .order_by(AuditRecord.seq)
        ).all()
    assert descs == ["token endpoint answered 503 (unknown)", "FHIR server timed out", None]


def test_run_due_picks_up_pending_jobs(
    app: FastAPI, settings: Settings, runner: WritebackRunner
) -> None:
    job_id = _job(app, settings)
    assert [j.id for j in runner.run_due()] == [job_id]
    assert runner.run_due() == []


def test_a_claimed_job_is_not_run_twice(
    app: FastAPI, settings: Settings, runner: WritebackRunner, peers: Peers
) -> None:
    """Another runner holds the job (its lease is in the future): neither run nor run_due
    posts it; when the lease has run out (that runner died) the sweep takes it up."""
    job_id = _job(app, settings)
    now = utcnow()
    with app.state.sessionmaker.begin() as session:
        assert claim_writeback_job(
            session, job_id, now=now, until=now + timedelta(minutes=5), owner="other"
        )
    with app.state.sessionmaker.begin() as session:  # a second claim fails
        assert not claim_writeback_job(
            session, job_id, now=now, until=now + timedelta(minutes=5), owner="test"
        )
    with pytest.raises(ConflictError, match="another runner"):
        runner.run(job_id)
    assert runner.run_due() == []
    assert peers.fhir.received == []
    with app.state.sessionmaker.begin() as session:
        job = session.get(WritebackJob, job_id)
        assert job is not None
        job.next_attempt = now - timedelta(seconds=1)  # the lease ran out
    assert [j.status for j in runner.run_due()] == ["done"]
    assert len(peers.fhir.received) == 1


def test_a_later_attempt_of_the_holding_round_job_takes_the_claim_over(
    app: FastAPI, settings: Settings, runner: WritebackRunner, peers: Peers
) -> None:
    """Attempt 1 of round job 7 claimed the write-back and its worker was SIGKILLed (its lease
    runs for minutes). Attempt 2 of the same round job takes over at once; a sweep or another
    round job may not; and attempt 1, were it still alive, records nothing."""
    job_id = _job(app, settings)
    now = utcnow()
    with app.state.sessionmaker.begin() as session:
        assert claim_writeback_job(
            session, job_id, now=now, until=now + timedelta(minutes=5), owner="round:7:1"
        )
    with pytest.raises(ConflictError, match="another runner"):
        runner.run(job_id, owner="sweep")
    with pytest.raises(ConflictError, match="another runner"):
        runner.run(job_id, owner="round:71:1", take_over="round:71:")
    assert peers.fhir.received == []
    done = runner.run(job_id, owner="round:7:2", take_over="round:7:")
    assert (done.status, done.attempts, done.claimed_by) == ("done", 1, "round:7:2")
    assert len(peers.fhir.received) == 1
    with app.state.sessionmaker.begin() as session:  # attempt 1 comes back: not its claim
        job = session.get(WritebackJob, job_id)
        assert job is not None
        job.status = "pending"  # even were the job pending again
    _, finished = runner._attempt(job_id, owner="round:7:1", last=True, delay=0.0)
    assert finished
    with app.state.sessionmaker() as session:
        job = session.get(WritebackJob, job_id)
        assert job is not None
        assert (job.attempts, job.claimed_by) == (1, "round:7:2")  # nothing recorded


def test_the_periodic_sweep_leaves_jobs_with_a_live_round_job_alone(
    app: FastAPI, settings: Settings, runner: WritebackRunner, peers: Peers
) -> None:
    job_id = _job(app, settings)  # its writeback.round job is queued
    assert runner.run_due(orphans_only=True) == []
    assert peers.fhir.received == []
    assert [j.id for j in runner.run_due()] == [job_id]  # `oncocds writeback run-due` does


def test_api_sweeper_delivers_jobs_nobody_started(
    settings: Settings, peers: Peers, tmp_path: Path
) -> None:
    """A job enqueued outside a request (as the HL7 worker does) is posted by the API's
    sweeper without anyone running ``writeback retry``."""
    swept = settings.model_copy(
        update={
            "writeback": settings.writeback.model_copy(update={"sweep_interval_seconds": 0.2}),
            "jobs": settings.jobs.model_copy(update={"in_process": True}),
        }
    )
    app = create_app(swept)
    with TestClient(app):
        job_id = _job(app, swept)
        deadline = time.monotonic() + 30
        while not peers.fhir.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(peers.fhir.received) == 1
        while time.monotonic() < deadline:
            with app.state.sessionmaker() as session:
                job = session.get(WritebackJob, job_id)
                assert job is not None
                if job.status == "done":
                    break
            time.sleep(0.05)
        assert job.status == "done"


def test_cli_run_due(
    *,
    app: FastAPI,
    client: TestClient,  # runs the app's lifespan, which disposes its engine
    settings: Settings,
    peers: Peers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job_id = _job(app, settings)
    for name, value in {
        "ONCOCDS_DATABASE_URL": settings.database_url,
        "ONCOCDS_WRITEBACK__FHIR_BASE_URL": settings.writeback.fhir_base_url,
        "ONCOCDS_WRITEBACK__TOKEN_URL": settings.writeback.token_url,
        "ONCOCDS_WRITEBACK__CLIENT_ID": settings.writeback.client_id,
        "ONCOCDS_WRITEBACK__PRIVATE_KEY_PATH": str(settings.writeback.private_key_path),
        "ONCOCDS_WRITEBACK__KID": settings.writeback.kid,
    }.items():
        monkeypatch.setenv(name, str(value))
    assert main(["writeback", "run-due"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{job_id}  done")
    assert out[-1] == "1 job(s) run, 1 done, 0 not done"
    assert len(peers.fhir.received) == 1
    assert _attempt_audit(app) == [(0, "done", "Patient/p1")]
    assert main(["writeback", "run-due"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 job(s) run, 0 done, 0 not done"


def test_not_configured(make_settings: Callable[..., Settings], sqlite_url: str) -> None:
    settings = make_settings(database_url=sqlite_url)
    assert not settings.writeback.enabled
    with pytest.raises(WritebackConfigError, match="not configured"):
        build_client(settings.writeback)
    assert main(["writeback", "retry", "--all-failed"]) == 2


def test_bad_key_is_a_config_error(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    settings = make_settings(
        writeback={
            "fhir_base_url": "http://x/fhir",
            "token_url": "http://x/token",
            "client_id": "c",
            "private_key_path": bad,
            "kid": "k",
        }
    )
    with pytest.raises(WritebackConfigError, match="cannot be used for ES384"):
        build_client(settings.writeback)


def test_background_helper_runs_with_the_apps_runner(
    app: FastAPI, client: TestClient, settings: Settings, peers: Peers
) -> None:
    job_id = _job(app, settings)
    run_writeback_in_background(app.state, job_id)
    assert len(peers.fhir.received) == 1
    jobs = client.get(
        "/api/v1/writeback", headers=_staff(settings), params={"status": "done"}
    ).json()["jobs"]
    assert [j["id"] for j in jobs] == [job_id]
    run_writeback_in_background(app.state, job_id)  # already done: logged, nothing posted
    assert len(peers.fhir.received) == 1


def test_cli_lists_failed_jobs(
    *,
    app: FastAPI,
    settings: Settings,
    runner: WritebackRunner,
    peers: Peers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    peers.fhir.script = [400]
    job_id = _job(app, settings)
    runner.run(job_id)
    monkeypatch.setenv("ONCOCDS_DATABASE_URL", settings.database_url)
    assert main(["writeback", "list", "--status", "failed"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{job_id}  failed   attempts 1")
    assert out[0].endswith("last error: FHIR server answered 400")
    assert out[-1] == "1 job(s)"
