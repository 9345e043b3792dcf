"""The review console in a real browser: Debian chromium driven by Playwright, against the app
served by uvicorn on a real TCP socket. Sign in, filter by patient, open an event, look at the
patient timeline, export FHIR and CSV. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from cds_service.audit import AuditTrail
from cds_service.settings import Settings
from integrations.fhir.resources import Bundle
from tests.cds_service.compliance.conftest import seed

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The console is database-agnostic; the API tests cover both backends."""
    return sqlite_url


@pytest.fixture
def served(capp: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(capp, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_console_sign_in_filter_open_export(
    *,
    served: str,
    trail: AuditTrail,
    token: Any,
    artifacts_dir: Path,
    tmp_path: Path,
    compliance_settings: Settings,
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium missing: run `make system-deps`")
    from playwright.sync_api import expect, sync_playwright

    ids = seed(trail)
    shots = artifacts_dir / "compliance-console"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{served}/compliance")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        # Every form control has an accessible label (keyboard and screen-reader use).
        unlabeled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter(e => !e.closest('label')
                              && !document.querySelector(`label[for="${e.id}"]`))
                 .map(e => e.name || e.id)"""
        )
        assert unlabeled == []
        page.screenshot(path=str(shots / "01-sign-in.png"), full_page=True)

        # Sign in by keyboard: paste the token, Tab to the button, Enter.
        page.get_by_label("Access token").fill(token("compliance"))
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.locator("#integrity-status")).to_contain_text("Intact")
        # 14 seeded records and the audit.verify event of this very sign-in.
        expect(page.locator("#results-body tr")).to_have_count(15)
        assert page.evaluate("() => sessionStorage.getItem('oncocds.compliance.token')") is not None

        # Filter by patient (submit with Enter).
        page.get_by_label("Patient").fill("Patient/p1")
        page.get_by_label("Patient").press("Enter")
        expect(page.locator("#results-body tr")).to_have_count(5)
        patients = page.locator("#results-body tr td:nth-child(7)").all_inner_texts()
        assert set(patients) == {"Patient/p1"}
        page.screenshot(path=str(shots / "02-filtered-by-patient.png"), full_page=True)

        # Open an event from the keyboard.
        first_open = page.locator("#results-body button").first
        record_id = first_open.get_attribute("data-record-id")
        assert record_id in ids
        first_open.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#detail")).to_be_visible()
        expect(page.locator("#detail-list")).to_contain_text(record_id or "")
        expect(page.locator("#detail-list")).to_contain_text("Patient/p1")
        page.screenshot(path=str(shots / "03-event-detail.png"), full_page=True)

        page.get_by_role("button", name="Patient timeline").click()
        expect(page.locator("#timeline-h")).to_contain_text("Patient/p1")
        # Two days of clinical activity, and today: the compliance officer's own look at the
        # patient's trail is on the timeline too.
        expect(page.locator("#timeline-list > li")).to_have_count(3)
        expect(page.locator("#timeline-list")).to_contain_text("audit.query by dev-compliance")
        page.screenshot(path=str(shots / "04-patient-timeline.png"), full_page=True)

        page.get_by_role("button", name="Accounting of disclosures").click()
        expect(page.locator("#disclosures-body tr")).to_have_count(5)

        with page.expect_download() as fhir_download:
            page.get_by_role("button", name="Export FHIR").click()
        fhir_path = tmp_path / "export.json"
        fhir_download.value.save_as(fhir_path)
        bundle = Bundle.model_validate_json(fhir_path.read_bytes())
        refs = {
            entity.what.reference
            for entry in bundle.entry or []
            for entity in entry.resource.entity or []  # type: ignore[union-attr]
            if entity.what
            and entity.what.reference
            and entity.what.reference.startswith("Patient/")
        }
        assert refs == {"Patient/p1"}
        codes = [e.resource.type.code for e in bundle.entry or []]  # type: ignore[union-attr]
        # The patient's 5 clinical events, plus this session's own audited looks at them.
        assert len([c for c in codes if not c.startswith("audit.")]) == 5
        expect(page.locator("#search-status")).to_contain_text("checkpoint 1")

        with page.expect_download() as csv_download:
            page.get_by_role("button", name="Export CSV").click()
        csv_path = tmp_path / "export.csv"
        csv_download.value.save_as(csv_path)
        rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
        assert {r["patient_id"] for r in rows} == {"Patient/p1"}

        page.get_by_role("button", name="Full check").click()
        expect(page.locator("#integrity-status")).to_contain_text("(full check)")
        # The CSV export sealed what the FHIR export added (its own audit record): checkpoint 2.
        expect(page.locator("#integrity-checkpoint")).to_contain_text("Last checkpoint #2")
        page.screenshot(path=str(shots / "05-after-export.png"), full_page=True)

        # Print view hides the controls.
        page.emulate_media(media="print")
        assert not page.locator("#filter-form").is_visible()
        page.emulate_media(media="screen")

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.evaluate("() => sessionStorage.getItem('oncocds.compliance.token')") is None
        browser.close()
    assert errors == []

    with trail.engine.connect() as conn:
        events = [r for r in trail.iter_rows(conn) if r["event_type"].startswith("audit.")]
    kinds = {r["event_type"] for r in events}
    assert {
        "audit.verify",
        "audit.query",
        "audit.read",
        "audit.disclosures",
        "audit.export",
    } <= kinds
    assert {r["agent_who"] for r in events} == {"dev-compliance"}
    exports = [r for r in events if r["event_type"] == "audit.export"]
    assert [json.dumps(r["details"]["format"]) for r in exports] == ['"fhir"', '"csv"']
    assert compliance_settings.audit.signing_key_path.is_file()


# ------------------------------------------------------------------ OIDC redirect sign-in


class _FakeIdP:
    """A stand-in OpenID Connect provider (network edge: no real IdP runs here).

    It auto-approves the authorization request (a real provider shows its login page), then
    checks the PKCE verifier against the challenge at the token endpoint, as RFC 7636 §4.6 asks,
    and issues an RS256 access token from a real key whose JWKS it serves.
    """

    def __init__(self) -> None:
        from joserfc.jwk import RSAKey

        self.key = RSAKey.generate_key(2048, auto_kid=True)
        self.base = ""
        self.codes: dict[str, dict[str, str]] = {}
        self.verified_pkce = False

    def app(self) -> Any:
        import base64
        import hashlib
        import secrets
        import urllib.parse

        from joserfc import jwt
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, RedirectResponse, Response
        from starlette.routing import Route

        def authorize(request: Request) -> Response:
            q = request.query_params
            assert q["response_type"] == "code"
            assert q["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "challenge": q["code_challenge"],
                "redirect_uri": q["redirect_uri"],
                "client_id": q["client_id"],
                "scope": q["scope"],
            }
            target = (
                q["redirect_uri"]
                + "?"
                + urllib.parse.urlencode({"code": code, "state": q["state"]})
            )
            return RedirectResponse(target, status_code=302)

        async def token(request: Request) -> Response:
            form = {
                k: v[0] for k, v in urllib.parse.parse_qs((await request.body()).decode()).items()
            }
            cors = {"Access-Control-Allow-Origin": request.headers.get("origin", "*")}
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                return JSONResponse({"error": "invalid_grant"}, status_code=400, headers=cors)
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400, headers=cors)
            self.verified_pkce = True
            now = int(time.time())
            claims = {
                "iss": self.base,
                "sub": "officer-42",
                "preferred_username": "c.officer",
                "aud": "oncocds",
                "azp": grant["client_id"],
                "iat": now,
                "exp": now + 300,
                "scope": grant["scope"],
            }
            access = jwt.encode(
                {"alg": "RS256", "kid": self.key.kid}, claims, self.key, algorithms=["RS256"]
            )
            return JSONResponse(
                {"access_token": access, "token_type": "Bearer", "expires_in": 300}, headers=cors
            )

        def jwks(request: Request) -> Response:
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        return Starlette(
            routes=[
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
                Route("/jwks", jwks),
            ]
        )


def _serve(app: Any) -> tuple[str, Any]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop


def test_console_oidc_redirect_sign_in(
    make_settings: Any, sqlite_url: str, tmp_path: Path, artifacts_dir: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium missing: run `make system-deps`")
    from playwright.sync_api import expect, sync_playwright

    from cds_service.app import create_app

    idp = _FakeIdP()
    idp_base, stop_idp = _serve(idp.app())
    idp.base = idp_base
    settings = make_settings(
        database_url=sqlite_url,
        audit={"signing_key_path": tmp_path / "k.pem", "checkpoint_interval_seconds": 0},
        compliance={
            "oidc_issuer": idp_base,
            "jwks_url": f"{idp_base}/jwks",
            "audience": "oncocds",
            "authorization_endpoint": f"{idp_base}/authorize",
            "token_endpoint": f"{idp_base}/token",
            "client_id": "oncocds-console",
        },
    )
    app = create_app(settings)
    seed(app.state.audit)
    base, stop_app = _serve(app)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/compliance")
            page.get_by_role("button", name="Sign in with your organisation").click()
            expect(page.locator("#integrity-status")).to_contain_text("Intact")
            expect(page.locator("#results-body tr")).to_have_count(15)
            assert "code=" not in page.url  # the code does not linger in the address bar
            page.screenshot(
                path=str(artifacts_dir / "compliance-console" / "06-oidc-signed-in.png")
            )
            browser.close()
        assert errors == []
    finally:
        stop_app()
        stop_idp()
    assert idp.verified_pkce
    trail: AuditTrail = app.state.audit
    with trail.engine.connect() as conn:
        queries = [r for r in trail.iter_rows(conn) if r["event_type"] == "audit.query"]
    assert queries
    assert queries[0]["agent_who"] == "officer-42"
    assert queries[0]["agent_user"] == "c.officer"
    assert queries[0]["details"]["clientId"] == "oncocds-console"
