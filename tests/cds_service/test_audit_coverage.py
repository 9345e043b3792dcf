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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cds_service.app import create_app
from cds_service.audit import AuditTrail
from cds_service.cli import build_parser
from cds_service.compliance.devtoken import mint_dev_token
from cds_service.settings import Settings


@dataclass
class Ctx:
    """What a call may need: tokens and ids of seeded records."""

    settings: Settings
    record_ids: list[str] = field(default_factory=list)

    def bearer(self, role: str = "compliance") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_dev_token(self.settings, role=role)}"}


Call = Callable[[TestClient, Ctx, dict[str, str]], httpx.Response]


def _get(path: str, **params: Any) -> Call:
    def call(client: TestClient, ctx: Ctx, headers: dict[str, str]) -> httpx.Response:
        url = path.format(record_id=ctx.record_ids[0])
        return client.get(url, params=params, headers=headers)

    return call


#: (method, OpenAPI path) -> how to call it with valid credentials (``headers``).
ROUTE_CALLS: dict[tuple[str, str], Call] = {
    ("GET", "/api/v1/audit"): _get("/api/v1/audit", patient="Patient/p1"),
    ("GET", "/api/v1/audit/verify"): _get("/api/v1/audit/verify"),
    ("GET", "/api/v1/audit/checkpoints"): _get("/api/v1/audit/checkpoints"),
    ("GET", "/api/v1/audit/disclosures"): _get("/api/v1/audit/disclosures", patient="Patient/p1"),
    ("GET", "/api/v1/audit/export"): _get("/api/v1/audit/export", format="csv"),
    ("GET", "/api/v1/audit/{record_id}"): _get("/api/v1/audit/{record_id}"),
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
}


@pytest.fixture
def ctx(make_settings: Callable[..., Settings], database_url: str, tmp_path: Path) -> Ctx:
    settings = make_settings(
        database_url=database_url,
        audit={
            "signing_key_path": tmp_path / "audit-key.pem",
            "checkpoint_interval_seconds": 0,
            "archive_dir": tmp_path / "archive",
        },
        compliance={"dev_key_path": tmp_path / "dev-oidc.json"},
    )
    return Ctx(settings=settings)


@pytest.fixture
def covered_app(ctx: Ctx) -> Iterator[tuple[TestClient, AuditTrail]]:
    app = create_app(ctx.settings)
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


@pytest.mark.parametrize("route", sorted(ROUTE_CALLS), ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("credentials", ["valid", "missing", "clinical"])
def test_route_emits_an_audit_event(
    covered_app: tuple[TestClient, AuditTrail], ctx: Ctx, route: tuple[str, str], credentials: str
) -> None:
    client, trail = covered_app
    headers = {
        "valid": ctx.bearer("compliance"),
        "missing": {},
        "clinical": ctx.bearer("clinician"),
    }[credentials]
    before = trail.count()
    response = ROUTE_CALLS[route](client, ctx, headers)
    if credentials == "valid":
        assert response.status_code == 200, response.text
    else:
        assert response.status_code in (401, 403)
    assert trail.count() > before, f"{route} ({credentials}) emitted no audit event"


def test_exempt_routes_answer_without_a_token(covered_app: tuple[TestClient, AuditTrail]) -> None:
    """The exempt routes really are public and data-free (a cheap guard on the exemptions)."""
    client, _ = covered_app
    for method, path in EXEMPT_ROUTES:
        url = path.format(name="console.js")
        response = client.request(method, url)
        assert response.status_code == 200, (method, path, response.status_code)
        assert "Patient/p1" not in response.text


# ----------------------------------------------------------------------------------- CLI

CliArgs = Callable[[Ctx, Path], list[str]]

#: CLI command paths that touch patient data -> their arguments.
CLI_CALLS: dict[tuple[str, ...], CliArgs] = {
    ("audit", "verify"): lambda ctx, tmp: ["audit", "verify"],
    ("audit", "prove"): lambda ctx, tmp: [
        "audit",
        "prove",
        ctx.record_ids[0],
        "--out",
        str(tmp / "p.json"),
    ],
    ("audit", "archive"): lambda ctx, tmp: ["audit", "archive", "--out-dir", str(tmp / "a")],
}

EXEMPT_CLI: dict[tuple[str, ...], str] = {
    ("serve",): "runs the API, whose routes are covered above",
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
    unknown = sorted(commands - set(CLI_CALLS) - set(EXEMPT_CLI))
    assert not unknown, f"CLI commands with no audit-coverage entry: {unknown}"
    assert not sorted(set(CLI_CALLS) - commands)


@pytest.mark.parametrize("command", sorted(CLI_CALLS), ids=" ".join)
def test_cli_command_emits_an_audit_event(
    covered_app: tuple[TestClient, AuditTrail], ctx: Ctx, command: tuple[str, ...], tmp_path: Path
) -> None:
    _, trail = covered_app
    env = {
        **os.environ,
        "ONCOCDS_DATABASE_URL": ctx.settings.database_url,
        "ONCOCDS_AUDIT__SIGNING_KEY_PATH": str(ctx.settings.audit.signing_key_path),
        "ONCOCDS_COMPLIANCE__DEV_KEY_PATH": str(ctx.settings.compliance.dev_key_path),
    }
    before = _max_seq(trail)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "oncocds"), *CLI_CALLS[command](ctx, tmp_path)],
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
    assert all(r["event_type"].startswith("audit.") for r in new)


def _max_seq(trail: AuditTrail) -> int:
    with trail.engine.connect() as conn:
        return int(conn.execute(text("SELECT max(seq) FROM audit_records")).scalar_one())
