"""Operator views of the inbox: the API (metadata by default, payload on request and audited,
replay) and the ``oncocds hl7`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from cds_service.db.base import utcnow
from cds_service.hl7.repository import InboxRepository, NewMessage
from cds_service.models.audit import AuditRecord
from cds_service.settings import Settings
from tests.cds_service.cdshooks.conftest import staff_headers
from tests.hl7_support import make_oru

ONCOCDS = str(Path(sys.executable).parent / "oncocds")


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url=database_url, compliance={"dev_key_path": tmp_path / "dev-oidc.json"}
    )


@pytest.fixture
def integration(settings: Settings) -> dict[str, str]:
    """An integration engineer's staff token (integration.read + integration.replay)."""
    return staff_headers(settings, "integration")


def _seed(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    repo = InboxRepository(engine)
    ids = {}
    for control_id, status in (("V1", "received"), ("V2", "failed"), ("V3", "not-processed")):
        ids[control_id] = repo.store(
            NewMessage(
                sending_application="MOLPATH_LIS",
                sending_facility="EXAMPLE_LAB",
                control_id=control_id,
                message_type="ORU^R01^ORU_R01",
                version="2.5.1",
                charset="utf-8",
                accept_ack_type="",
                application_ack_type="",
                raw=make_oru(control_id),
                received_at=utcnow(),
                remote_addr="127.0.0.1",
                status=status,
                last_error="bytes not valid in utf-8" if status == "failed" else None,
                ack=b"MSH|^~\\&|ONCOCDS\rMSA|AA|" + control_id.encode() + b"\r",
            )
        ).id
    engine.dispose()
    return ids


def _audit_events(database_url: str) -> list[tuple[str, str | None]]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditRecord.event_type, AuditRecord.control_id).order_by(AuditRecord.seq)
        ).all()
    engine.dispose()
    return [(r[0], r[1]) for r in rows]


def test_api_lists_metadata_only(
    client: TestClient, database_url: str, integration: dict[str, str]
) -> None:
    _seed(database_url)
    response = client.get("/api/v1/hl7/messages", params={"status": "failed"}, headers=integration)
    assert response.status_code == 200
    body = response.json()
    assert [item["controlId"] for item in body["items"]] == ["V2"]
    item = body["items"][0]
    assert item["status"] == "failed"
    assert item["lastError"] == "bytes not valid in utf-8"
    assert item["payload"] is None
    assert "MRN12345" not in response.text
    assert "TESTPATIENT" not in response.text
    everything = client.get("/api/v1/hl7/messages", headers=integration).json()["items"]
    assert [i["controlId"] for i in everything] == ["V3", "V2", "V1"]
    # Who looked at the queue is audited (identifiers and counts only, no control ids).
    assert _audit_events(database_url) == [("hl7.message.list", None)] * 2


def test_api_payload_only_on_request_and_audited(
    client: TestClient, database_url: str, integration: dict[str, str]
) -> None:
    ids = _seed(database_url)
    plain = client.get(f"/api/v1/hl7/messages/{ids['V1']}", headers=integration)
    assert plain.status_code == 200
    assert plain.json()["payload"] is None
    assert "MRN12345" not in plain.text
    assert _audit_events(database_url) == []
    full = client.get(
        f"/api/v1/hl7/messages/{ids['V1']}", params={"include": "payload"}, headers=integration
    )
    assert full.status_code == 200
    assert "MRN12345" in full.json()["payload"]["raw"]
    assert _audit_events(database_url) == [("hl7.message.read", "V1")]


def test_api_replay(client: TestClient, database_url: str, integration: dict[str, str]) -> None:
    ids = _seed(database_url)
    response = client.post(f"/api/v1/hl7/messages/{ids['V2']}/replay", headers=integration)
    assert response.status_code == 200
    assert response.json()["status"] == "received"
    again = client.post(f"/api/v1/hl7/messages/{ids['V2']}/replay", headers=integration)
    assert again.status_code == 409
    assert again.json()["resourceType"] == "OperationOutcome"
    assert _audit_events(database_url) == [("hl7.replayed", "V2")]


def test_api_errors(client: TestClient, database_url: str, integration: dict[str, str]) -> None:
    missing = client.get("/api/v1/hl7/messages/999999", headers=integration)
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    for params in ({"status": "bogus"}, {"limit": 100000}):
        response = client.get("/api/v1/hl7/messages", params=params, headers=integration)
        assert response.status_code == 400


def test_api_staff_permissions(client: TestClient, database_url: str, settings: Settings) -> None:
    """Compliance staff read the inbox but only integration staff replay; the agent is ``sub``."""
    ids = _seed(database_url)
    compliance = staff_headers(settings, "compliance")
    url = f"/api/v1/hl7/messages/{ids['V2']}"
    read = client.get(url, params={"include": "payload"}, headers=compliance)
    assert read.status_code == 200
    assert client.post(f"{url}/replay", headers=compliance).status_code == 403
    assert client.get(url, headers=staff_headers(settings, "governance")).status_code == 403
    assert client.get(url).status_code == 401
    replayed = client.post(f"{url}/replay", headers=staff_headers(settings, "integration"))
    assert replayed.status_code == 200
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditRecord.event_type, AuditRecord.agent_who).order_by(AuditRecord.seq)
        ).all()
    engine.dispose()
    assert [(r[0], r[1]) for r in rows if r[0].startswith("hl7.")] == [
        ("hl7.message.read", "dev-compliance"),
        ("hl7.replayed", "dev-integration"),
    ]
    assert [r[0] for r in rows].count("auth.rejected") == 3


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ONCOCDS, "hl7", *args],
        env={**os.environ, "ONCOCDS_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_list_show_replay(sqlite_url: str) -> None:
    ids = _seed(sqlite_url)
    listing = _cli(sqlite_url, "list", "--status", "failed")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "V2" in lines[0]
    assert "failed" in lines[0]
    shown = _cli(sqlite_url, "show", str(ids["V2"]))
    assert shown.returncode == 0
    meta = json.loads(shown.stdout)
    assert (meta["controlId"], meta["status"]) == ("V2", "failed")
    assert "payload" not in meta
    with_payload = json.loads(_cli(sqlite_url, "show", str(ids["V2"]), "--payload").stdout)
    assert "MRN12345" in with_payload["payload"]["raw"]
    replayed = _cli(sqlite_url, "replay", "--all-failed")
    assert replayed.returncode == 0
    assert replayed.stdout.strip() == f"{ids['V2']} queued for processing"
    assert _cli(sqlite_url, "list", "--status", "failed").stdout == ""
    refused = _cli(sqlite_url, "replay", str(ids["V1"]))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"oncocds: error: HL7 inbox message {ids['V1']} is received and cannot be replayed"
    ]
    events = _audit_events(sqlite_url)
    assert events == [
        ("hl7.message.list", None),
        ("hl7.message.read", "V2"),
        ("hl7.replayed", "V2"),
        ("hl7.message.list", None),
    ]


def test_cli_unknown_message_is_one_line(sqlite_url: str) -> None:
    result = _cli(sqlite_url, "show", "4242")
    assert result.returncode == 2
    assert result.stderr == "oncocds: error: HL7 inbox message 4242 not found\n"
