"""The compliance API: search with every filter, paging, one record, disclosures, verification.

Runs on SQLite and PostgreSQL (``database_url``); tokens come from the development OIDC issuer
(a real ES256 key pair on disk, validated by joserfc like a site provider's tokens).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.audit import AuditTrail
from tests.cds_service.compliance.conftest import seed

API = "/api/v1/audit"


def _search(client: TestClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get(API, params=params, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _user_events(trail: AuditTrail, event_type: str) -> list[dict[str, Any]]:
    with trail.engine.connect() as conn:
        return [r for r in trail.iter_rows(conn) if r["event_type"] == event_type]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"patient": "Patient/p1"}, 5),  # 4 hook calls + 1 HL7 message
        ({"agent": "https://ehr-a.example.org"}, 6),
        ({"agent": "Practitioner/dr2"}, 4),  # matches the user on whose behalf a client acted
        ({"eventType": "hl7.received"}, 1),
        ({"controlId": "MSG00042"}, 1),
        ({"hookInstance": "hook-7"}, 1),
        ({"requestId": "req-3"}, 1),
        ({"outcome": 4}, 1),
        ({"action": "C"}, 1),
        ({"since": "2026-03-01T12:00:00Z", "until": "2026-03-01T15:00:00Z"}, 3),
        ({"patient": "Patient/p0", "agent": "https://ehr-b.example.org"}, 2),
        ({"patient": "Patient/none"}, 0),
    ],
)
def test_filters(
    cclient: TestClient,
    auth: dict[str, str],
    trail: AuditTrail,
    params: dict[str, Any],
    expected: int,
) -> None:
    seed(trail)
    body = _search(cclient, auth, **params, limit=100)
    assert len(body["items"]) == expected
    for item in body["items"]:
        if "patient" in params:
            assert item["patientId"] == params["patient"]
        if "eventType" in params:
            assert item["eventType"] == params["eventType"]


def test_keyset_pages_cover_everything_once_newest_first(
    cclient: TestClient, auth: dict[str, str], trail: AuditTrail
) -> None:
    ids = seed(trail)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4, "eventType": "cds-hooks.call"}
        if cursor:
            params["cursor"] = cursor
        body = _search(cclient, auth, **params)
        seen.extend(item["seq"] for item in body["items"])
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == 12
    assert len(ids) == 14


def test_one_record_and_not_found(
    cclient: TestClient, auth: dict[str, str], trail: AuditTrail
) -> None:
    ids = seed(trail)
    response = cclient.get(f"{API}/{ids[4]}", headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == ids[4]
    assert body["hookInstance"] == "hook-4"
    assert set(body) >= {"recordHash", "prevHash", "agentWho", "patientId", "entities"}
    missing = cclient.get(f"{API}/00000000-0000-4000-8000-000000000000", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    reads = _user_events(trail, "audit.read")
    assert [r["details"]["found"] for r in reads] == [True, False]
    assert reads[0]["patient_id"] == "Patient/p1"


def test_every_query_is_itself_audited(
    cclient: TestClient, auth: dict[str, str], trail: AuditTrail
) -> None:
    seed(trail)
    _search(cclient, auth, patient="Patient/p2", eventType="cds-hooks.call")
    queries = _user_events(trail, "audit.query")
    assert len(queries) == 1
    query = queries[0]
    assert query["agent_type"] == "user"
    assert query["agent_who"] == "dev-compliance"
    assert query["patient_id"] == "Patient/p2"
    assert query["details"]["filters"] == {"event_type": "cds-hooks.call"}
    assert query["details"]["results"] == 4
    assert query["outcome"] == 0


def test_disclosures_report(cclient: TestClient, auth: dict[str, str], trail: AuditTrail) -> None:
    seed(trail)
    response = cclient.get(
        f"{API}/disclosures",
        params={"patient": "Patient/p1", "since": "2020-01-01T00:00:00Z"},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    entries = response.json()["disclosures"]
    assert len(entries) == 5
    hl7 = next(e for e in entries if e["eventType"] == "hl7.received")
    assert hl7 == {
        "date": "2026-03-03T09:00:00Z",
        "recipient": "lab-lis",
        "user": None,
        "what": "hl7.received",
        "purpose": "PUBHLTH",
        "eventType": "hl7.received",
        "recordId": hl7["recordId"],
        "tpoExempt": False,
    }
    hook = next(e for e in entries if e["eventType"] == "cds-hooks.call")
    assert hook["what"] == "cds-hooks.call: Observation"
    purposes = {e["purpose"] for e in entries}
    assert purposes <= {"TREAT", "unknown", "PUBHLTH"}
    assert all(e["tpoExempt"] == (e["purpose"] == "TREAT") for e in entries)
    # A compliance officer reading the trail is not a disclosure of the patient's data.
    again = cclient.get(
        f"{API}/disclosures",
        params={"patient": "Patient/p1", "since": "2020-01-01T00:00:00Z"},
        headers=auth,
    )
    assert len(again.json()["disclosures"]) == 5


def test_verify_endpoint_reports_integrity_and_last_checkpoint(
    cclient: TestClient, auth: dict[str, str], trail: AuditTrail, database_url: str
) -> None:
    seed(trail)
    cclient.get(f"{API}/export", params={"format": "csv"}, headers=auth)  # seals
    body = cclient.get(f"{API}/verify", headers=auth).json()
    assert body["ok"] is True
    assert body["lastCheckpoint"]["lastSeq"] == 14
    assert body["checkpointsChecked"] == 1

    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE audit_records SET agent_user = 'someone' WHERE seq = 3"))
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_records ENABLE TRIGGER USER"))
    engine.dispose()
    broken = cclient.get(f"{API}/verify", headers=auth).json()
    assert broken["ok"] is False
    assert broken["firstBroken"]["seq"] == 3
    assert "altered" in broken["firstBroken"]["reason"]


def test_bad_filter_is_a_400_without_echo(cclient: TestClient, auth: dict[str, str]) -> None:
    response = cclient.get(API, params={"outcome": "7<script>"}, headers=auth)
    assert response.status_code == 400
    assert "<script>" not in response.text
    naive = cclient.get(API, params={"since": "2026-01-01T00:00:00"}, headers=auth)
    assert naive.status_code == 400
    too_long = cclient.get(API, params={"patient": "x" * 300}, headers=auth)
    assert too_long.status_code == 400


def test_the_api_seals_new_records_periodically(
    make_settings: Any, sqlite_url: str, tmp_path: Any
) -> None:
    """With ONCOCDS_AUDIT__CHECKPOINT_INTERVAL_SECONDS=1 the running app seals on its own."""
    import time

    from cds_service.app import create_app
    from cds_service.audit.checkpoints import last_checkpoint

    settings = make_settings(
        database_url=sqlite_url,
        audit={"signing_key_path": tmp_path / "k.pem", "checkpoint_interval_seconds": 1},
        compliance={"dev_key_path": tmp_path / "d.json"},
    )
    app = create_app(settings)
    with TestClient(app):
        seed(app.state.audit)
        deadline = time.monotonic() + 60
        while last_checkpoint(app.state.engine) is None and time.monotonic() < deadline:
            time.sleep(0.2)
    cp = last_checkpoint(app.state.engine)
    assert cp is not None, "no checkpoint within 60 s"
    assert cp.first_seq == 1
    assert cp.last_seq >= 1


def test_agent_search_pages_through_client_and_user_matches_once(
    cclient: TestClient, auth: dict[str, str], trail: AuditTrail
) -> None:
    seed(trail)
    # One record where the same identifier is both the client and the user.
    both = trail.record(
        action="R", event_type="report.view", agent_who="Practitioner/dr1",
        agent_user="Practitioner/dr1", agent_type="user",
    ).id  # fmt: skip
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"agent": "Practitioner/dr1", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = _search(cclient, auth, **params)
        seen.extend(item["id"] for item in body["items"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5  # 4 as the user of an EHR call + 1 as both
    assert seen[0] == both


def test_recent_verify_checks_signatures_and_the_newest_records_only(
    cclient: TestClient, auth: dict[str, str], trail: AuditTrail, capp: Any
) -> None:
    from cds_service.audit.checkpoints import seal

    seed(trail)  # 14 records
    seal(trail.engine, state_signer(capp), max_records=5)  # 1-5, 6-10, 11-14
    recent = cclient.get(f"{API}/verify", params={"recent": "true"}, headers=auth).json()
    assert recent["ok"] is True
    assert recent["scope"] == "recent"
    assert recent["checkpointsChecked"] == 3
    assert recent["recordsChecked"] == 4  # seq 11..14 (the verify call's own record comes after)
    full = cclient.get(f"{API}/verify", headers=auth).json()
    assert (full["scope"], full["recordsChecked"]) == ("full", 15)


def state_signer(app: Any) -> Any:
    from cds_service.compliance import state

    return state.signer(app)
