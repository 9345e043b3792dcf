"""Prefetch resolution against a real HTTP FHIR server (medplum fhir-router on Node, see
tests/support/fhir_server/): fetching absent keys with the bearer token, paging with a cap,
``null``, 404s, timeouts, OperationOutcome values and 412."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.cds_service.cdshooks.conftest import EHR_FHIR, CdsClient, client_entry
from tests.cds_service.cdshooks.services import prefetch_probe
from tests.support.fhir_server import FhirServer

TOKEN = "fhir-token-4f2a"
PROBE = "test-prefetch-probe"


@pytest.fixture
def seeded(fhir_server: FhirServer) -> FhirServer:
    fhir_server.put({"resourceType": "Patient", "id": "p1"})
    fhir_server.put({"resourceType": "Practitioner", "id": "dr1"})
    for i in range(5):
        fhir_server.post(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": f"obs {i}"},
                "subject": {"reference": "Patient/p1"},
            }
        )
    fhir_server.configure(requireToken=TOKEN)
    prefetch_probe.LAST.clear()
    return fhir_server


@pytest.fixture
def probe_client(make_cds_client: Any, seeded: FhirServer, es_key: Any, rs_key: Any) -> CdsClient:
    entry = client_entry([es_key, rs_key], fhir_servers=[EHR_FHIR, seeded.base_url])
    client: CdsClient = make_cds_client(
        clients=[entry],
        cds_hooks={"prefetch_request_timeout_s": 1.0, "prefetch_deadline_s": 4.0},
    )
    return client


def _gets(server: FhirServer) -> list[dict[str, Any]]:
    """FHIR reads the service made (the seeding writes are not of interest)."""
    return [r for r in server.requests() if r["method"] == "GET"]


def _body(server: FhirServer | None, prefetch: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr1", "patientId": "p1"},
    }
    if server is not None:
        body["fhirServer"] = server.base_url
        body["fhirAuthorization"] = {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "oncocds",
        }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def test_absent_keys_are_fetched_with_the_bearer_token_and_paged(
    probe_client: CdsClient, seeded: FhirServer
) -> None:
    response = probe_client.call(PROBE, _body(seeded))
    assert response.status_code == 200, response.text
    resolved = prefetch_probe.LAST[-1]
    assert resolved.prefetch["patient"]["id"] == "p1"
    assert resolved.prefetch["practitioner"]["id"] == "dr1"
    bundle = resolved.prefetch["observations"]
    assert bundle["resourceType"] == "Bundle"
    assert len(bundle["entry"]) == 5  # three pages of _count=2 merged
    assert not any(link["relation"] == "next" for link in bundle.get("link", []))
    seen = _gets(seeded)
    assert len(seen) == 5  # Patient, Observation x3 pages, Practitioner
    assert {r["token"] for r in seen} == {TOKEN}
    fetches = probe_client.audit_rows("cds-hooks.prefetch")
    assert sorted(r.details["key"] for r in fetches) == ["observations", "patient", "practitioner"]
    assert next(r for r in fetches if r.details["key"] == "observations").details["pages"] == 3
    call = probe_client.audit_rows("cds-hooks.call")[-1]
    assert call.patient_id == "p1"
    assert sorted(call.details["prefetch_fetched"]) == ["observations", "patient", "practitioner"]
    everything = json.dumps([[r.details, r.outcome_desc] for r in probe_client.audit_rows()])
    assert TOKEN not in everything


def test_paging_stops_at_the_cap_and_says_so(
    make_cds_client: Any, seeded: FhirServer, es_key: Any
) -> None:
    cds = make_cds_client(
        clients=[client_entry([es_key], fhir_servers=[seeded.base_url])],
        cds_hooks={"prefetch_max_pages": 2},
    )
    assert cds.call(PROBE, _body(seeded)).status_code == 200
    bundle = prefetch_probe.LAST[-1].prefetch["observations"]
    assert len(bundle["entry"]) == 4
    assert bundle["meta"]["tag"][0]["code"] == "truncated"


def test_null_means_no_data_and_nothing_is_fetched(
    probe_client: CdsClient, seeded: FhirServer
) -> None:
    prefetch = {"patient": {"resourceType": "Patient", "id": "p1"}, "observations": None}
    prefetch["practitioner"] = None
    response = probe_client.call(PROBE, _body(seeded, prefetch))
    assert response.status_code == 200, response.text
    resolved = prefetch_probe.LAST[-1]
    assert resolved.prefetch["observations"] is None
    assert resolved.prefetch["practitioner"] is None
    assert _gets(seeded) == []


def test_a_read_that_is_404_is_no_data(probe_client: CdsClient, seeded: FhirServer) -> None:
    body = _body(seeded)
    body["context"]["userId"] = "Practitioner/absent"
    assert probe_client.call(PROBE, body).status_code == 200
    resolved = prefetch_probe.LAST[-1]
    assert "practitioner" in resolved.prefetch
    assert resolved.prefetch["practitioner"] is None


def test_an_optional_key_failing_upstream_is_reported_not_fatal(
    probe_client: CdsClient, seeded: FhirServer
) -> None:
    seeded.add_rule(
        match="Practitioner/",
        status=503,
        body={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]},
    )
    assert probe_client.call(PROBE, _body(seeded)).status_code == 200
    resolved = prefetch_probe.LAST[-1]
    assert "practitioner" not in resolved.prefetch
    assert "503" in resolved.prefetch_errors["practitioner"]


def test_a_200_operation_outcome_is_an_error_not_data(
    probe_client: CdsClient, seeded: FhirServer
) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]}
    seeded.add_rule(match="Observation", status=200, body=outcome)
    response = probe_client.call(PROBE, _body(seeded))
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "observations" in response.json()["issue"][0]["diagnostics"]


def test_a_required_key_timing_out_is_412(probe_client: CdsClient, seeded: FhirServer) -> None:
    seeded.add_rule(match="Observation", delayMs=2500)
    response = probe_client.call(PROBE, _body(seeded))
    assert response.status_code == 412
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "incomplete"
    assert "timed out" in body["issue"][0]["diagnostics"]
    failed = [r for r in probe_client.audit_rows("cds-hooks.prefetch") if r.outcome != 0]
    assert [r.details["key"] for r in failed] == ["observations"]
    call = probe_client.audit_rows("cds-hooks.call")[-1]
    assert call.details["status"] == 412


def test_required_key_absent_without_fhir_access_is_412(probe_client: CdsClient) -> None:
    response = probe_client.call(PROBE, _body(None, {"patient": {"resourceType": "Patient"}}))
    assert response.status_code == 412
    assert "observations" in response.json()["issue"][0]["diagnostics"]


def test_operation_outcome_prefetch_value_is_refetched_when_possible(
    probe_client: CdsClient, seeded: FhirServer
) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]}
    without_server = probe_client.call(PROBE, _body(None, {"patient": outcome}))
    assert without_server.status_code == 412
    with_server = probe_client.call(PROBE, _body(seeded, {"patient": outcome}))
    assert with_server.status_code == 200
    assert prefetch_probe.LAST[-1].prefetch["patient"]["id"] == "p1"


def test_a_paged_client_bundle_is_completed_on_the_server(
    probe_client: CdsClient, seeded: FhirServer
) -> None:
    import httpx

    first = httpx.get(
        f"{seeded.base_url}/Observation?patient=p1&_count=2",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    prefetch = {"patient": {"resourceType": "Patient", "id": "p1"}, "observations": first}
    assert probe_client.call(PROBE, _body(seeded, prefetch)).status_code == 200
    assert len(prefetch_probe.LAST[-1].prefetch["observations"]["entry"]) == 5


def test_next_link_to_another_host_is_not_followed(
    probe_client: CdsClient, seeded: FhirServer
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Observation", "id": "o1"}}],
        "link": [{"relation": "next", "url": "https://evil.example/steal?token=1"}],
    }
    prefetch = {"patient": {"resourceType": "Patient", "id": "p1"}, "observations": bundle}
    assert probe_client.call(PROBE, _body(seeded, prefetch)).status_code == 200
    assert len(prefetch_probe.LAST[-1].prefetch["observations"]["entry"]) == 1
    failed = [r for r in probe_client.audit_rows("cds-hooks.prefetch") if r.outcome != 0]
    assert "leaves the FHIR server" in failed[-1].outcome_desc


def test_fhir_server_not_allowed_for_the_client_is_403_and_never_contacted(
    make_cds_client: Any, seeded: FhirServer, es_key: Any
) -> None:
    cds = make_cds_client(clients=[client_entry([es_key], fhir_servers=[EHR_FHIR])])
    response = cds.call(PROBE, _body(seeded))
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"
    assert _gets(seeded) == []
