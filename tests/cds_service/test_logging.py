"""No PHI, JWTs or access tokens in logs; access lines carry request id, route, status, latency."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.logs import configure_logging, redact
from cds_service.settings import Settings

# Synthetic PHI and credentials: none of these strings may appear in any log line.
PATIENT_NAME = "ZEBEDIAH QUARTERMAINE"
MRN = "MRN-99887766"
BIRTH_DATE = "1951-07-13"
JWT = (
    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJodHRwczovL2Voci5leGFtcGxlIiwic3ViIjoiMTIzIn0."
    "c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
)
ACCESS_TOKEN = "fhir-access-token-5f1e9c2b7a"
FORBIDDEN = (PATIENT_NAME, MRN, BIRTH_DATE, JWT, ACCESS_TOKEN, "ZEBEDIAH")

leaky = APIRouter()
log = logging.getLogger("oncocds.test.leaky")


@leaky.post("/_test/leaky/{patient}")
def leaky_route(patient: str, body: dict[str, object]) -> None:
    # A careless call site: the token filter must still mask the credentials.
    log.warning("calling FHIR with Authorization: Bearer %s", ACCESS_TOKEN)
    log.info("token payload", extra={"authorization": f"Bearer {JWT}"})
    raise ValueError(f"could not parse patient {PATIENT_NAME} {MRN}")


def _body() -> dict[str, object]:
    return {
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirAuthorization": {"access_token": ACCESS_TOKEN, "token_type": "Bearer"},
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "name": [{"text": PATIENT_NAME}],
                "birthDate": BIRTH_DATE,
                "identifier": [{"value": MRN}],
            }
        },
    }


def test_in_process_logs_hold_no_phi_or_tokens(
    make_settings: Callable[..., Settings], sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", "json")
    try:
        app = create_app(make_settings(database_url=sqlite_url), extra_routers=(leaky,))
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.post(
                f"/_test/leaky/{MRN}?name={PATIENT_NAME}",
                json=_body(),
                headers={"Authorization": f"Bearer {JWT}", "X-Request-Id": "phi-test-1"},
            )
        assert response.status_code == 500
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    for secret in FORBIDDEN:
        assert secret not in err, f"{secret!r} leaked into the logs"
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "oncocds.access"]
    assert access, err
    assert access[-1]["request_id"] == "phi-test-1"
    assert access[-1]["route"] == "/_test/leaky/{patient}"
    assert access[-1]["status"] == 500
    assert isinstance(access[-1]["latency_ms"], float)
    errors = [line for line in lines if line["logger"] == "oncocds.errors"]
    assert errors
    assert "ValueError" in errors[0]["exc"]
    assert "[redacted]" in err  # the careless lines were logged, masked


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_served_process_logs_hold_no_phi_or_tokens(tmp_path: Path) -> None:
    """The real ``oncocds serve`` process under uvicorn, its stderr captured and grepped."""
    port = _free_port()
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {
        **os.environ,
        "ONCOCDS_DATABASE_URL": db,
        "ONCOCDS_PORT": str(port),
        "ONCOCDS_LOG_LEVEL": "DEBUG",
        "ONCOCDS_LOG_FORMAT": "json",
    }
    oncocds = str(Path(sys.executable).parent / "oncocds")
    subprocess.run([oncocds, "db", "upgrade"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [oncocds, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {JWT}"}
        httpx.post(f"{base}/cds-services/x?mrn={MRN}", json=_body(), headers=headers, timeout=5)
        httpx.get(f"{base}/healthz?patient={PATIENT_NAME}", headers=headers, timeout=5)
        httpx.post(f"{base}/healthz", content=b"{" + MRN.encode(), headers=headers, timeout=5)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    logs = out + err
    for secret in FORBIDDEN:
        assert secret not in logs, f"{secret!r} leaked into the server output"
    routes = [json.loads(line).get("route") for line in err.splitlines() if line.startswith("{")]
    assert "/healthz" in routes
    assert "/docs" in out  # the start banner names the OpenAPI page


def test_redact_masks_tokens() -> None:
    text = f'Authorization: Bearer {ACCESS_TOKEN} jwt={JWT} {{"access_token": "{ACCESS_TOKEN}"}}'
    masked = redact(text)
    assert ACCESS_TOKEN not in masked
    assert JWT not in masked
