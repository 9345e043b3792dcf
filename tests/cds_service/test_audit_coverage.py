"""Audit coverage: every HTTP route and every CLI command that touches patient data records an
audit event, on success and on refused authentication alike (issue #6, item 1).

Data-driven: ``ROUTE_CALLS`` says how to call each route of the OpenAPI schema, ``EXEMPT_ROUTES``
lists the routes that touch no patient data and why. A route in neither table fails the walk,
so a branch that adds a route must add a row here (the lead extends these tables at merge).
The same for CLI commands (``CLI_CALLS`` / ``EXEMPT_CLI``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cds_service.analyses.service import store_analysis
from cds_service.app import create_app
from cds_service.audit import AuditTrail
from cds_service.cli import build_parser
from cds_service.compliance.devtoken import mint_dev_token
from cds_service.db.base import utcnow
from cds_service.hl7.repository import InboxRepository, NewMessage
from cds_service.jobs import enqueue
from cds_service.reports.tokens import report_secret, sign_report_token
from cds_service.security.signing import SigningKey, sign_client_jwt
from cds_service.settings import Settings
from tests.cds_service.cdshooks.conftest import (
    BASE,
    EHR_ISS,
    client_entry,
    es_key,
    patient_view_body,
    write_clients,
)
from tests.cds_service.cdshooks.services import ALL as TEST_SERVICES
from tests.genomics_examples import ISSUED, braf_crc_interpretation
from tests.hl7_support import make_oru

__all__ = ["es_key", "write_clients"]  # fixtures shared with the CDS Hooks tests


@dataclass
class Ctx:
    """What a call may need: keys, tokens and ids of seeded records."""

    settings: Settings
    client_key: SigningKey
    record_ids: list[str] = field(default_factory=list)
    analysis_id: str = ""
    hl7_id: int = 0
    imaging_id: str = ""  # an imaging request; its (failed) result is imaging_result_id
    imaging_result_id: str = ""
    job_id: int = 0

    def bearer(self, role: str = "compliance") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_dev_token(self.settings, role=role)}"}


#: The kinds of credentials a caller may hold. Each route accepts some of them; every other kind
#: must be refused (401/403) *and* audited. ``(ctx, path) -> (headers, query parameters)``.
Credential = Callable[[Ctx, str], tuple[dict[str, str], dict[str, str]]]


def _staff(role: str) -> Credential:
    return lambda ctx, path: (ctx.bearer(role), {})


def _client_jwt(ctx: Ctx, path: str) -> tuple[dict[str, str], dict[str, str]]:
    # A trusted clinical client's JWT for exactly this URL (CDS Hooks 2.0 §Trusting CDS Clients).
    token = sign_client_jwt(ctx.client_key, iss=EHR_ISS, aud=BASE + path)
    return {"Authorization": f"Bearer {token}"}, {}


def _report_link(ctx: Ctx, path: str) -> tuple[dict[str, str], dict[str, str]]:
    # The HMAC link token of a report page, bound to the analysis id at the end of the path.
    secret = report_secret(ctx.settings)
    return {}, {"t": sign_report_token(secret, path.rsplit("/", 1)[-1], ttl_seconds=600)}


def _pacs_notify(ctx: Ctx, path: str) -> tuple[dict[str, str], dict[str, str]]:
    # The PACS's Lua script: the configured notification token (issue #15).
    token = ctx.settings.imaging_service.notify_token
    assert token is not None
    return {"Authorization": f"Bearer {token.get_secret_value()}"}, {}


CREDENTIALS: dict[str, Credential] = {
    "compliance": _staff("compliance"),  # audit.read/export, integration.read, feedback.read
    "integration": _staff("integration"),  # integration.read, integration.replay
    "governance": _staff("governance"),  # feedback.read
    "clinician-staff": _staff("clinician"),  # a valid staff token without any permission
    "client-jwt": _client_jwt,
    "report-link": _report_link,
    "pacs-notify": _pacs_notify,
    "missing": lambda ctx, path: ({}, {}),
}


@dataclass(frozen=True)
class Route:
    """How to call one route, and which credential kinds it accepts."""

    path: str  # with {record_id}, {analysis_id}, {hl7_id}, {job_id}
    valid: frozenset[str]
    params: dict[str, str] = field(default_factory=dict)
    body: Callable[[TestClient, Ctx], dict[str, Any]] | None = None
    ok: int = 200

    def __call__(self, client: TestClient, ctx: Ctx, method: str, kind: str) -> httpx.Response:
        path = self.path.format(
            record_id=ctx.record_ids[0] if ctx.record_ids else "",
            analysis_id=ctx.analysis_id,
            hl7_id=ctx.hl7_id,
            imaging_id=ctx.imaging_id,
            result_id=ctx.imaging_result_id,
            job_id=ctx.job_id,
        )
        body = self.body(client, ctx) if self.body is not None else None
        headers, extra = CREDENTIALS[kind](ctx, path)
        params = {**self.params, **extra}
        if method == "POST" and path.startswith("/api/v1/imaging-analyses"):
            headers = {**headers, "content-type": "image/png"}
            return client.post(path, params=params, headers=headers, content=b"\x89PNG\r\n\x1a\n")
        if method == "POST" and body is None and path.startswith("/api/v1/analyses"):
            headers = {**headers, "content-type": "text/plain"}
            return client.post(path, params=params, headers=headers, content=b"BRAF V600E\n")
        return client.request(method, path, params=params, headers=headers, json=body)


AUDITORS = frozenset({"compliance"})
QUEUE_READERS = frozenset({"compliance", "integration"})
CLINICAL = frozenset({"client-jwt"})


def _feedback_body(client: TestClient, ctx: Ctx) -> dict[str, Any]:
    """Feedback on a card really issued by the service (its uuid must be known)."""
    path = "/cds-services/test-patient-view"
    headers, _ = _client_jwt(ctx, path)
    card = client.post(path, json=patient_view_body(), headers=headers).json()["cards"][0]
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-23T10:05:00Z",
    }
    return {"feedback": [item]}


#: (method, OpenAPI path) -> how to call it and with which credential kinds.
ROUTE_CALLS: dict[tuple[str, str], Route] = {
    ("GET", "/api/v1/audit"): Route("/api/v1/audit", AUDITORS, {"patient": "Patient/p1"}),
    ("GET", "/api/v1/audit/verify"): Route("/api/v1/audit/verify", AUDITORS),
    ("GET", "/api/v1/audit/checkpoints"): Route("/api/v1/audit/checkpoints", AUDITORS),
    ("GET", "/api/v1/audit/disclosures"): Route(
        "/api/v1/audit/disclosures", AUDITORS, {"patient": "Patient/p1"}
    ),
    ("GET", "/api/v1/audit/export"): Route("/api/v1/audit/export", AUDITORS, {"format": "csv"}),
    ("GET", "/api/v1/audit/{record_id}"): Route("/api/v1/audit/{record_id}", AUDITORS),
    # Governance committee (staff): counts and reason codes per service.
    ("GET", "/api/v1/feedback/summary"): Route(
        "/api/v1/feedback/summary", frozenset({"compliance", "governance"})
    ),
    # Integration and compliance staff read the queues; only integration staff replay.
    ("GET", "/api/v1/writeback"): Route("/api/v1/writeback", QUEUE_READERS),
    ("GET", "/api/v1/llm/stats"): Route("/api/v1/llm/stats", QUEUE_READERS),
    ("GET", "/api/v1/hl7/messages"): Route("/api/v1/hl7/messages", QUEUE_READERS),
    ("GET", "/api/v1/hl7/messages/{message_id}"): Route(
        "/api/v1/hl7/messages/{hl7_id}", QUEUE_READERS, {"include": "payload"}
    ),
    ("POST", "/api/v1/hl7/messages/{message_id}/replay"): Route(
        "/api/v1/hl7/messages/{hl7_id}/replay", frozenset({"integration"})
    ),
    ("GET", "/api/v1/jobs"): Route("/api/v1/jobs", QUEUE_READERS),
    ("GET", "/api/v1/jobs/{job_id}"): Route("/api/v1/jobs/{job_id}", QUEUE_READERS),
    ("POST", "/api/v1/jobs/{job_id}/replay"): Route(
        "/api/v1/jobs/{job_id}/replay", frozenset({"integration"})
    ),
    # Clinical clients: the trusted-client JWT, aud = the exact URL called.
    ("POST", "/api/v1/analyses"): Route(
        "/api/v1/analyses", CLINICAL, {"tumour_type": "COAD", "patient": "Patient/p1"}, ok=201
    ),
    ("GET", "/api/v1/analyses/{analysis_id}"): Route("/api/v1/analyses/{analysis_id}", CLINICAL),
    # No explanation was asked for the seeded analysis: 404, audited all the same.
    ("GET", "/api/v1/analyses/{analysis_id}/explanation"): Route(
        "/api/v1/analyses/{analysis_id}/explanation", CLINICAL, ok=404
    ),
    ("POST", "/cds-services/{service_id}"): Route(
        "/cds-services/test-patient-view", CLINICAL, body=lambda c, x: patient_view_body()
    ),
    ("POST", "/cds-services/{service_id}/feedback"): Route(
        "/cds-services/test-patient-view/feedback", CLINICAL, body=_feedback_body
    ),
    # Clinicians following a card's link: the HMAC link token in ``t``.
    ("GET", "/reports/{analysis_id}"): Route("/reports/{analysis_id}", frozenset({"report-link"})),
    # Imaging (issue #15). No bundle is installed in this walk: POSTs are refused with 503
    # (audited); the seeded request's result failed, so GET answers its status, no heatmap.
    ("POST", "/api/v1/imaging-analyses"): Route(
        "/api/v1/imaging-analyses", CLINICAL, {"patient": "Patient/p1"}, ok=503
    ),
    ("GET", "/api/v1/imaging-analyses/{analysis_id}"): Route(
        "/api/v1/imaging-analyses/{imaging_id}", CLINICAL
    ),
    ("GET", "/api/v1/imaging-analyses/{analysis_id}/heatmaps/{number}.png"): Route(
        "/api/v1/imaging-analyses/{imaging_id}/heatmaps/0.png", CLINICAL, ok=404
    ),
    ("POST", "/api/v1/imaging/pacs-notifications"): Route(
        "/api/v1/imaging/pacs-notifications",
        frozenset({"pacs-notify"}),
        body=lambda c, x: {"studyUid": "1.2.3.4"},
        ok=503,
    ),
    ("GET", "/reports/imaging/{result_id}"): Route(
        "/reports/imaging/{result_id}", frozenset({"report-link"})
    ),
}

#: Routes that touch no patient data, with the reason.
EXEMPT_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "liveness: no data",
    ("GET", "/readyz"): "readiness: database ping only",
    ("GET", "/docs"): "Swagger UI (static)",
    ("GET", "/docs/oauth2-redirect"): "Swagger UI (static)",
    ("GET", "/redoc"): "ReDoc (static)",
    ("GET", "/openapi.json"): "the schema",
    ("GET", "/compliance"): "console shell: the same static page for everyone, no data",
    ("GET", "/compliance/static/{name}"): "console assets (script, style)",
    ("GET", "/imaging/model-card"): "the installed imaging model's card (no patient data)",
    ("GET", "/cds-services"): "CDS Hooks discovery: the service list, no patient data "
    "(still needs the client JWT, CDS Hooks 2.0 §Trusting CDS Clients)",
}

#: Exempt routes that are nevertheless authenticated: the credential kind they need.
EXEMPT_BUT_AUTHENTICATED: dict[tuple[str, str], str] = {("GET", "/cds-services"): "client-jwt"}


@pytest.fixture
def ctx(
    make_settings: Callable[..., Settings],
    database_url: str,
    tmp_path: Path,
    write_clients: Callable[[list[dict[str, Any]]], Path],
    es_key: SigningKey,
) -> Ctx:
    settings = make_settings(
        database_url=database_url,
        clients_file=write_clients([client_entry([es_key])]),
        audit={
            "signing_key_path": tmp_path / "audit-key.pem",
            "checkpoint_interval_seconds": 0,
            "archive_dir": tmp_path / "archive",
        },
        compliance={"dev_key_path": tmp_path / "dev-oidc.json"},
        reports={"secret_file": tmp_path / "report-secret"},
        imaging_service={"notify_token": "pacs-notify-token"},
        # No job runs behind a test's back: a replayed HL7 message's job would otherwise be
        # processed by the app's executor and add hl7.processed to the command's events.
        jobs={"in_process": False},
    )
    return Ctx(settings=settings, client_key=es_key)


def _seed_hl7(engine: Any) -> int:
    return (
        InboxRepository(engine)
        .store(
            NewMessage(
                sending_application="MOLPATH_LIS",
                sending_facility="EXAMPLE_LAB",
                control_id="COV1",
                message_type="ORU^R01^ORU_R01",
                version="2.5.1",
                charset="utf-8",
                accept_ack_type="",
                application_ack_type="",
                raw=make_oru("COV1"),
                received_at=utcnow(),
                remote_addr="127.0.0.1",
                status="failed",
                last_error="seeded for the coverage walk",
                ack=b"MSH|^~\\&|ONCOCDS\rMSA|AA|COV1\r",
            )
        )
        .id
    )


def _seed_imaging(app: Any) -> tuple[str, str]:
    """An imaging request whose one result failed (no model is installed in the walk)."""
    from cds_service.models.imaging import ImagingRequest, ImagingResult

    now = utcnow()
    with app.state.sessionmaker.begin() as session:
        result = ImagingResult(
            id=str(uuid.uuid4()),
            source_key="dicom-study:1.2.3",
            bundle_sha256="0" * 64,
            model_version="test 0",
            patient_ref="Patient/p1",
            reference={"kind": "dicomweb-study", "studyUid": "1.2.3"},
            status="failed",
            error="seeded for the coverage walk",
            job_id=None,
            attempts=1,
            created=now,
            updated=now,
            upload=None,
            upload_type=None,
        )
        request = ImagingRequest(
            id=str(uuid.uuid4()),
            created=now,
            patient_ref="Patient/p1",
            origin="api",
            agent="https://ehr.example.org",
            result_ids=[result.id],
            writeback_analysis_id=None,
        )
        session.add_all([result, request])
    return request.id, result.id


def _seed_dead_job(session_factory: Any) -> int:
    """A dead job to show and replay (``jobs.prune``: harmless if the executor runs it)."""
    with session_factory.begin() as session:
        job = enqueue(session, kind="jobs.prune", key="coverage:dead", payload={})
        job.status, job.last_error = "dead", "seeded for the coverage walk"
        return int(job.id)


@pytest.fixture
def covered_app(ctx: Ctx) -> Iterator[tuple[TestClient, AuditTrail]]:
    app = create_app(ctx.settings, cds_services=TEST_SERVICES)
    trail: AuditTrail = app.state.audit
    old = datetime.now(UTC) - timedelta(days=4000)
    for i in range(3):
        ref = trail.record(
            action="R",
            event_type="cds-hooks.call",
            agent_who="https://ehr.example.org",
            patient_id="Patient/p1",
            request_id=f"seed-{i}",
            recorded=old,
        )
        ctx.record_ids.append(ref.id)
    with app.state.sessionmaker.begin() as session:
        ctx.analysis_id = store_analysis(
            session, braf_crc_interpretation(), "Patient/p1", "vcf", issued=ISSUED
        ).id
    ctx.hl7_id = _seed_hl7(app.state.engine)
    ctx.imaging_id, ctx.imaging_result_id = _seed_imaging(app)
    ctx.job_id = _seed_dead_job(app.state.sessionmaker)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, trail


def _schema_routes(client: TestClient) -> set[tuple[str, str]]:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_every_route_is_covered_or_exempt(covered_app: tuple[TestClient, AuditTrail]) -> None:
    client, _ = covered_app
    routes = _schema_routes(client)
    unknown = sorted(routes - set(ROUTE_CALLS) - set(EXEMPT_ROUTES))
    assert not unknown, f"routes with no audit-coverage entry: {unknown}"
    stale = sorted(set(ROUTE_CALLS) - routes)
    assert not stale, f"coverage entries for routes that no longer exist: {stale}"
    assert not set(ROUTE_CALLS) & set(EXEMPT_ROUTES)
    assert all(route.valid <= set(CREDENTIALS) for route in ROUTE_CALLS.values())


@pytest.mark.parametrize("route", sorted(ROUTE_CALLS), ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("credentials", sorted(CREDENTIALS))
def test_route_emits_an_audit_event(
    covered_app: tuple[TestClient, AuditTrail], ctx: Ctx, route: tuple[str, str], credentials: str
) -> None:
    """Each route with each kind of credential: the valid kinds get through, every other kind
    (another audience's token, a staff token on a clinical route, a client JWT on a staff route,
    none) is refused; both are audited."""
    client, trail = covered_app
    entry = ROUTE_CALLS[route]
    before = trail.count()
    response = entry(client, ctx, route[0], credentials)
    if credentials in entry.valid:
        assert response.status_code == entry.ok, response.text
    else:
        assert response.status_code in (401, 403), (credentials, response.status_code)
    assert trail.count() > before, f"{route} ({credentials}) emitted no audit event"


def test_exempt_routes_answer_without_patient_data(
    covered_app: tuple[TestClient, AuditTrail], ctx: Ctx
) -> None:
    """The exempt routes are data-free; the public ones answer without any credential (a cheap
    guard on the exemptions) and the authenticated ones only with their credential."""
    client, _ = covered_app
    for method, path in EXEMPT_ROUTES:
        url = path.format(name="console.js")
        kind = EXEMPT_BUT_AUTHENTICATED.get((method, path))
        if kind is not None:
            assert client.request(method, url).status_code == 401, (method, path)
        headers, params = CREDENTIALS[kind or "missing"](ctx, url)
        response = client.request(method, url, headers=headers, params=params)
        assert response.status_code == 200, (method, path, response.status_code)
        assert "Patient/p1" not in response.text


# ----------------------------------------------------------------------------------- CLI

CliArgs = Callable[[Ctx, Path], list[str]]

#: CLI command paths that touch patient data in the database -> (arguments, the event type
#: prefix every record they add must have).
CLI_CALLS: dict[tuple[str, ...], tuple[CliArgs, str]] = {
    ("audit", "verify"): (lambda ctx, tmp: ["audit", "verify"], "audit."),
    ("audit", "prove"): (
        lambda ctx, tmp: ["audit", "prove", ctx.record_ids[0], "--out", str(tmp / "p.json")],
        "audit.",
    ),
    ("audit", "archive"): (
        lambda ctx, tmp: ["audit", "archive", "--out-dir", str(tmp / "a")],
        "audit.",
    ),
    ("hl7", "list"): (lambda ctx, tmp: ["hl7", "list"], "hl7.message.list"),
    ("hl7", "show"): (
        lambda ctx, tmp: ["hl7", "show", str(ctx.hl7_id), "--payload"],
        "hl7.message.read",
    ),
    ("hl7", "replay"): (lambda ctx, tmp: ["hl7", "replay", str(ctx.hl7_id)], "hl7.replayed"),
    ("writeback", "list"): (lambda ctx, tmp: ["writeback", "list"], "writeback.list"),
    ("explain",): (lambda ctx, tmp: ["explain", ctx.analysis_id], "llm.explain"),
    ("llm", "stats"): (lambda ctx, tmp: ["llm", "stats"], "llm.stats"),
    ("jobs", "list"): (lambda ctx, tmp: ["jobs", "list"], "jobs.list"),
    ("jobs", "show"): (lambda ctx, tmp: ["jobs", "show", str(ctx.job_id)], "jobs.read"),
    ("jobs", "replay"): (lambda ctx, tmp: ["jobs", "replay", str(ctx.job_id)], "jobs.replayed"),
}

#: Commands that touch patient data but need a running peer (an MLLP sender, an EHR FHIR server)
#: to do so: their audit events are asserted by the named test instead.
CLI_COVERED_ELSEWHERE: dict[tuple[str, ...], tuple[str, str]] = {
    ("writeback", "retry"): (
        "tests/cds_service/writeback/test_writeback_runner.py",
        "test_exhausted_round_is_failed_listed_and_retryable",  # writeback.attempt after retry
    ),
    ("writeback", "run-due"): (
        "tests/cds_service/writeback/test_writeback_runner.py",
        "test_cli_run_due",  # writeback.attempt
    ),
    ("hl7", "worker"): (
        "tests/cds_service/hl7/test_worker.py",
        "test_genetic_result_is_processed_into_a_variant_summary",  # hl7.processed
    ),
    ("mllp",): (
        "tests/cds_service/hl7/test_listener.py",
        "test_audit_records_received_and_ack_sent_with_control_id_only",  # hl7.received
    ),
    # Needs a model bundle (a training run in the session): imaging.classify per file there.
    ("classify",): (
        "tests/cds_service/test_classify_cli.py",
        "test_text_output_is_labelled_ai_generated_and_audited",
    ),
    # Reads no database itself: it calls the running service, which audits each hook call.
    ("demo",): (
        "tests/cds_service/demo/test_demo_cli.py",
        "test_demo_prints_the_cards_and_the_report_link",  # cds-hooks.call, analysis.create
    ),
}

EXEMPT_CLI: dict[tuple[str, ...], str] = {
    ("serve",): "runs the API, whose routes are covered above",
    ("worker",): "runs jobs; each job kind audits what it does (hl7.processed, writeback.attempt)",
    ("relay",): "publishes job ids to the broker; reads no patient data",
    ("db", "upgrade"): "schema only",
    ("db", "downgrade"): "schema only",
    ("db", "check"): "schema only",
    ("db", "head"): "schema only",
    ("version",): "no data",
    ("audit", "checkpoint"): "seals record hashes; shows no record content",
    ("audit", "keygen"): "key only",
    ("audit", "public-key"): "key only",
    ("audit", "check-proof"): "reads a proof file, never the database",
    ("audit", "verify-archive"): "reads an archive file, never the database",
    ("compliance", "dev-token"): "mints a development token",
    ("dev-token",): "mints a development token (client JWT or staff token)",
    ("dev-setup",): "writes a development client key and clients file",
    ("kb", "build"): "builds the knowledge base from cited sources; no patient data",
    ("kb", "info"): "prints knowledge-base metadata; no patient data",
    ("analyze",): "interprets a file the operator already holds and prints the result: no "
    "database read or write, nothing stored, so no stored record to account for",
    ("train",): "offline training on a de-identified image dataset folder; no service database "
    "or EHR record is read",
    ("evaluate",): "offline evaluation of a bundle on a de-identified dataset folder; no service "
    "database or EHR record is read",
    ("train-llm",): "offline fine-tuning on pairs built from the knowledge base's cited facts; no "
    "patient data, no service database or EHR record is read",
    ("model", "verify"): "checks a model bundle's files and metadata; no patient data",
    ("model", "info"): "prints a model bundle's metadata; no patient data",
}


def _command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _command_paths(sub, (*prefix, name))
            return found
    return {prefix}


def test_every_cli_command_is_covered_or_exempt() -> None:
    commands = _command_paths(build_parser())
    tables = (set(CLI_CALLS), set(CLI_COVERED_ELSEWHERE), set(EXEMPT_CLI))
    unknown = sorted(commands - set().union(*tables))
    assert not unknown, f"CLI commands with no audit-coverage entry: {unknown}"
    assert not sorted(set().union(*tables) - commands)
    assert sum(len(t) for t in tables) == len(set().union(*tables)), "a command in two tables"
    root = Path(__file__).resolve().parents[2]
    for path, test_name in CLI_COVERED_ELSEWHERE.values():
        assert f"def {test_name}(" in (root / path).read_text(encoding="utf-8"), (path, test_name)


@pytest.mark.parametrize("command", sorted(CLI_CALLS), ids=" ".join)
def test_cli_command_emits_an_audit_event(
    covered_app: tuple[TestClient, AuditTrail], ctx: Ctx, command: tuple[str, ...], tmp_path: Path
) -> None:
    _, trail = covered_app
    args, event_prefix = CLI_CALLS[command]
    env = {
        **os.environ,
        "ONCOCDS_DATABASE_URL": ctx.settings.database_url,
        "ONCOCDS_AUDIT__SIGNING_KEY_PATH": str(ctx.settings.audit.signing_key_path),
        "ONCOCDS_COMPLIANCE__DEV_KEY_PATH": str(ctx.settings.compliance.dev_key_path),
    }
    before = _max_seq(trail)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "oncocds"), *args(ctx, tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Compared by chain position, not count: ``archive`` removes old records.
    with trail.engine.connect() as conn:
        new = list(trail.iter_rows(conn, from_seq=before + 1))
    assert new, f"oncocds {' '.join(command)} emitted no audit event"
    assert all(r["event_type"].startswith(event_prefix) for r in new), [
        r["event_type"] for r in new
    ]


def _max_seq(trail: AuditTrail) -> int:
    with trail.engine.connect() as conn:
        return int(conn.execute(text("SELECT max(seq) FROM audit_records")).scalar_one())
