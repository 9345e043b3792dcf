"""The CDS Hooks sandbox, unmodified, drives OncoCDS in a real browser.

Debian chromium, driven by Playwright, opens the built sandbox (tests/data/cds-hooks-sandbox,
served over HTTP on 127.0.0.1) with only its documented query parameters (``fhirServiceUrl``,
``patientId``, ``serviceDiscoveryURL``, ``hook``, ``screen``). The sandbox talks to a real
``oncocds serve`` process (CORS for the sandbox's origin; the sandbox's issuer trusted through
the README's clients-file example: its key set pinned inline, its ``jku`` allowlisted) and to the
real test FHIR server (medplum's router) holding the synthetic demo patient. The flow:
discovery, patient-view cards shown, a suggestion accepted, a card dismissed with an override
reason (the feedback stored and audited), order-sign. The cards asserted are the ones the
service answered (read from the browser's network traffic), never fixed texts. Screenshots go
to test-artifacts/cds-hooks-sandbox/.

Requests to any host other than 127.0.0.1 are aborted: the sandbox also tries its own default
discovery URL and the ``jku`` host, neither of which can be reached here (nor must be).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from cds_service.cli import demo_patient
from cds_service.models.cdshooks import CdsFeedback
from tests.cds_service.demo.conftest import Served
from tests.support.fhir_server import FhirServer, fhir_server, fhir_server_session

__all__ = ["fhir_server", "fhir_server_session"]

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
SANDBOX = ROOT / "tests" / "data" / "cds-hooks-sandbox" / "build"
README = ROOT / "README.md"
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
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
TIMEOUT_MS = 90_000


def readme_clients_toml() -> str:
    """The clients-file example of the README section on the sandbox, as written there."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Connecting the public CDS Hooks sandbox", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README's sandbox section has no TOML example"
    return "\n".join(line.removeprefix("   ") for line in block.group(1).splitlines()) + "\n"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def sandbox_site() -> Iterator[str]:
    """The built sandbox, as any static web server would serve it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(SANDBOX)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_readme_clients_example_pins_the_sandbox_key_set(tmp_path: Path) -> None:
    from cds_service.security.clients import load_clients_file

    path = tmp_path / "clients.toml"
    path.write_text(readme_clients_toml())
    client = load_clients_file(path, default_algorithms=["ES384"]).get(SANDBOX_ISS)
    assert client is not None
    assert client.jku_allowlist == {SANDBOX_JKU}
    published = json.loads((SANDBOX / ".well-known" / "jwks.json").read_text())
    assert client.jwks == published


def _sandbox_url(site: str, fhir: FhirServer, served: Served, hook: str, screen: str) -> str:
    query = urllib.parse.urlencode(
        {
            "fhirServiceUrl": fhir.base_url,
            "patientId": demo_patient.PATIENT_ID,
            "serviceDiscoveryURL": f"{served.url}/cds-services",
            "hook": hook,
            "screen": screen,
        }
    )
    return f"{site}/index.html?{query}"


def card_box(page: Any, card: dict[str, Any]) -> Any:
    """The sandbox's rendering of ``card`` (an MUI Card whose summary line is the card's)."""
    summary = page.get_by_text(card["summary"], exact=True)
    return page.locator(".MuiCard-root").filter(has=summary)


def _feedback_rows(database_url: str) -> list[Any]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(CdsFeedback).order_by(CdsFeedback.received_at)).all())
    finally:
        engine.dispose()


def test_the_sandbox_drives_oncocds(
    *,
    serve: Callable[..., Served],
    fhir_server: FhirServer,
    sandbox_site: str,
    sqlite_url: str,
    tmp_path: Path,
    artifacts_dir: Path,
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium missing: run `make system-deps`")
    from playwright.sync_api import Response, expect, sync_playwright

    for resource in demo_patient.resources():
        fhir_server.put(resource)
    clients = tmp_path / "clients.toml"
    clients.write_text(
        re.sub(
            r"(?m)^fhir_servers = .*$",
            f'fhir_servers = ["{fhir_server.base_url}"]',
            readme_clients_toml(),
        )
    )
    served = serve(
        sqlite_url,
        dev_setup=False,
        ONCOCDS_CLIENTS_FILE=str(clients),
        ONCOCDS_CDS_HOOKS__CORS_ORIGINS=json.dumps([sandbox_site]),
    )
    discovery_url = f"{served.url}/cds-services"

    def is_discovery(response: Response) -> bool:
        return response.url == discovery_url and response.request.method == "GET"

    def is_hook_call(response: Response) -> bool:
        path = response.url.removeprefix(discovery_url + "/")
        return (
            response.request.method == "POST"
            and response.url.startswith(discovery_url + "/")
            and "/" not in path
        )

    def is_feedback(response: Response) -> bool:
        return response.request.method == "POST" and response.url.endswith("/feedback")

    shots = artifacts_dir / "cds-hooks-sandbox"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.route(
            "**/*",
            lambda route: (
                route.continue_()
                if urllib.parse.urlsplit(route.request.url).hostname == "127.0.0.1"
                else route.abort()
            ),
        )
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)

        # Discovery and patient-view: the sandbox loads the patient, discovers the services and
        # calls the patient-view ones with the prefetch it fetched from the FHIR server.
        with page.expect_response(is_hook_call, timeout=TIMEOUT_MS) as call:
            with page.expect_response(is_discovery, timeout=TIMEOUT_MS) as discovery:
                page.goto(
                    _sandbox_url(sandbox_site, fhir_server, served, "patient-view", "patient-view")
                )
            # Without the pinned key set this was 401 ("key set unavailable": the sandbox's jku
            # cannot be fetched from here).
            assert discovery.value.status == 200, served.audit("auth.rejected")[-1].details
        hooks = {s["id"]: s["hook"] for s in discovery.value.json()["services"]}
        service_id = call.value.url.rsplit("/", 1)[1]
        assert hooks[service_id] == "patient-view"
        assert call.value.status == 200
        sent = call.value.request.post_data_json
        assert sent["fhirServer"] == fhir_server.base_url
        assert sent["context"]["patientId"] == demo_patient.PATIENT_ID
        assert len(sent["prefetch"]["variants"]["entry"]) == len(demo_patient.VARIANTS)
        cards = call.value.json()["cards"]
        assert cards, "patient-view answered no card for the demo patient"
        for card in cards:
            expect(card_box(page, card)).to_be_visible()
        page.screenshot(path=str(shots / "01-patient-view-cards.png"), full_page=True)

        # Accept a suggestion: the sandbox sends feedback with the suggestion's uuid.
        accepted = next(c for c in cards if any(s.get("uuid") for s in c.get("suggestions", [])))
        suggestion = next(s for s in accepted["suggestions"] if s.get("uuid"))
        with page.expect_response(is_feedback, timeout=TIMEOUT_MS) as feedback:
            card_box(page, accepted).get_by_role(
                "button", name=suggestion["label"], exact=True
            ).click()
        assert feedback.value.status == 200
        assert feedback.value.json() == {"stored": 1, "duplicates": 0}

        # Dismiss another card, choosing an override reason from its menu.
        dismissed = next(
            (c for c in cards if c.get("overrideReasons") and c is not accepted),
            next(c for c in cards if c.get("overrideReasons")),
        )
        reason = dismissed["overrideReasons"][0]
        card_box(page, dismissed).get_by_role("button", name="select dismiss reason").click()
        with page.expect_response(is_feedback, timeout=TIMEOUT_MS) as feedback:
            page.get_by_role("menuitem", name=f"Override: {reason['display']}").click()
        assert feedback.value.status == 200
        expect(card_box(page, dismissed)).to_have_count(0)  # the sandbox removed the card
        page.screenshot(
            path=str(shots / "02-suggestion-accepted-card-dismissed.png"), full_page=True
        )

        # The feedback reached the service: stored, and audited as the sandbox's.
        rows = _feedback_rows(sqlite_url)
        assert [(r.card_uuid, r.outcome) for r in rows] == [
            (accepted["uuid"], "accepted"),
            (dismissed["uuid"], "overridden"),
        ]
        assert rows[0].accepted_suggestions == [suggestion["uuid"]]
        assert rows[1].override_reason_code == reason["code"]
        assert {r.client_iss for r in rows} == {SANDBOX_ISS}
        audited = served.audit("cds-hooks.feedback")
        assert [(r.agent_who, r.details["outcome"], r.outcome) for r in audited] == [
            (SANDBOX_ISS, "accepted", 0),
            (SANDBOX_ISS, "overridden", 0),
        ]
        assert {r.patient_id for r in audited} == {demo_patient.PATIENT_ID}

        # order-sign: choose a medication in the sandbox's Rx Sign screen and sign the order.
        with page.expect_response(is_discovery, timeout=TIMEOUT_MS):
            page.goto(_sandbox_url(sandbox_site, fhir_server, served, "order-sign", "rx-sign"))
        page.locator("input[name='medication-input']").fill("capecitabine")
        page.get_by_role("button", name=re.compile(r"^capecitabine 500 MG Oral Tablet$")).click()
        with page.expect_response(is_hook_call, timeout=TIMEOUT_MS) as call:
            page.get_by_role("button", name="Sign Order").click()
        service_id = call.value.url.rsplit("/", 1)[1]
        assert hooks[service_id] == "order-sign"
        assert call.value.status == 200
        draft = call.value.request.post_data_json["context"]["draftOrders"]["entry"][0]["resource"]
        assert draft["resourceType"] == "MedicationRequest"
        assert "capecitabine" in draft["medicationCodeableConcept"]["text"]
        cards = call.value.json()["cards"]
        assert cards, "order-sign answered no card for capecitabine and a DPYD *1/*2A patient"
        for card in cards:
            expect(card_box(page, card)).to_be_visible()
        page.screenshot(path=str(shots / "03-order-sign-cards.png"), full_page=True)
        browser.close()

    calls = served.audit("cds-hooks.call")
    assert [(r.agent_who, r.outcome) for r in calls] == [(SANDBOX_ISS, 0), (SANDBOX_ISS, 0)]
    assert served.audit("auth.rejected") == []
