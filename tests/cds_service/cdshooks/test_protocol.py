"""Discovery, invocation errors, per-hook context validation, card storage, CORS."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from cds_service.cdshooks.registry import CdsServiceDefinition, ServiceDefinitionError
from cds_service.cdshooks.schemas import CdsResponse
from cds_service.models.cdshooks import CdsCard
from tests.cds_service.cdshooks.conftest import CdsClient, patient_view_body


def test_discovery_lists_every_service_with_spec_fields(cds: CdsClient) -> None:
    response = cds.discovery()
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert set(services) == {
        "test-patient-view",
        "test-order-select",
        "test-order-sign",
        "test-encounter-discharge",
        "test-prefetch-probe",
    }
    pv = services["test-patient-view"]
    assert pv == {
        "hook": "patient-view",
        "title": "Test patient-view service",
        "description": "Test only: says which patient it saw and links to a SMART app.",
        "id": "test-patient-view",
        "prefetch": {"patient": "Patient/{{context.patientId}}"},
        "usageRequirements": "Test only.",
    }
    assert "prefetch" not in services["test-order-select"]  # optional and empty: omitted


def test_discovery_with_no_services_is_an_empty_list(make_cds_client: Any) -> None:
    cds = make_cds_client(services=())
    assert cds.discovery().json() == {"services": []}


def test_production_discovery_has_no_test_services(make_cds_client: Any) -> None:
    cds = make_cds_client(services=None)  # the built-in list
    ids = [s["id"] for s in cds.discovery().json()["services"]]
    assert not [i for i in ids if i.startswith("test-")]


def test_unknown_service_is_404_operation_outcome(cds: CdsClient) -> None:
    response = cds.call("no-such-service", patient_view_body())
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "not-found"


def test_malformed_json_is_400_operation_outcome(cds: CdsClient) -> None:
    path = "/cds-services/test-patient-view"
    response = cds.http.post(
        path,
        content=b"{not json",
        headers={**cds.headers(path), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"hook": None}, "hook"),
        ({"hookInstance": None}, "hookInstance"),
        ({"context": None}, "context"),
        ({"fhirAuthorization": {"access_token": "t", "token_type": "Bearer"}}, "fhirAuthorization"),
        ({"fhirServer": "not a url"}, "fhirServer"),
    ],
)
def test_invalid_request_fields_are_400(cds: CdsClient, change: dict[str, Any], where: str) -> None:
    body = patient_view_body()
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    response = cds.call("test-patient-view", body)
    assert response.status_code == 400
    assert where in response.json()["issue"][0]["diagnostics"]


def test_fhir_authorization_requires_fhir_server(cds: CdsClient) -> None:
    body = patient_view_body(
        fhirAuthorization={
            "access_token": "secret-token-value",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "oncocds",
        }
    )
    response = cds.call("test-patient-view", body)
    assert response.status_code == 400
    assert "fhirServer is required" in response.text
    assert "secret-token-value" not in response.text


def test_hook_must_match_the_service(cds: CdsClient) -> None:
    response = cds.call("test-patient-view", patient_view_body(hook="order-sign"))
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("service", "hook", "context", "field"),
    [
        ("test-patient-view", "patient-view", {"userId": "Practitioner/1"}, "patientId"),
        ("test-patient-view", "patient-view", {"userId": "Device/1", "patientId": "p"}, "userId"),
        (
            "test-patient-view",
            "patient-view",
            {"userId": "Practitioner/1", "patientId": "bad id!"},
            "patientId",
        ),
        (
            "test-order-select",
            "order-select",
            {
                "userId": "Practitioner/1",
                "patientId": "p",
                "draftOrders": {"resourceType": "Bundle"},
            },
            "selections",
        ),
        (
            "test-order-sign",
            "order-sign",
            {"userId": "Practitioner/1", "patientId": "p", "draftOrders": {"resourceType": "X"}},
            "draftOrders",
        ),
        (
            "test-order-sign",
            "order-sign",
            {"userId": "Patient/1", "patientId": "p", "draftOrders": {"resourceType": "Bundle"}},
            "userId",
        ),
        (
            "test-encounter-discharge",
            "encounter-discharge",
            {"userId": "Practitioner/1", "patientId": "p"},
            "encounterId",
        ),
    ],
)
def test_context_is_validated_per_hook(
    cds: CdsClient, service: str, hook: str, context: dict[str, Any], field: str
) -> None:
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    response = cds.call(service, body)
    assert response.status_code == 400, response.text
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert f"context.{field}" in diagnostics
    assert "bad id!" not in diagnostics  # messages never echo values


def test_unknown_top_level_fields_and_extensions_are_tolerated(cds: CdsClient) -> None:
    body = patient_view_body(extension={"org.example.x": {"a": 1}}, somethingNew=True)
    assert cds.call("test-patient-view", body).status_code == 200


def test_fhir_server_scheme_and_allowlist(es_key: Any) -> None:
    """Production refuses http fhirServer (400); any mode refuses one not on the client's list."""
    from types import SimpleNamespace

    from cds_service.cdshooks.schemas import CdsRequest
    from cds_service.cdshooks.service import CdsHooksRuntime
    from cds_service.errors import BadRequestError, ForbiddenError
    from cds_service.security.clients import TrustedClient

    client = TrustedClient(
        iss="x",
        jwks_url=None,
        jwks={"keys": []},
        jku_allowlist=frozenset(),
        fhir_servers=frozenset({"http://fhir.local/r4", "https://fhir.example.org/r4"}),
        tenant=None,
        algorithms=frozenset({"ES384"}),
    )
    caller = SimpleNamespace(client=client)

    def check(production: bool, server: str) -> None:
        runtime = SimpleNamespace(settings=SimpleNamespace(is_production=production))
        body = CdsRequest.model_validate(patient_view_body(fhirServer=server))
        CdsHooksRuntime._check_fhir_server(runtime, body, caller)  # type: ignore[arg-type]

    check(False, "http://fhir.local/r4/")  # development: http allowed, trailing slash ignored
    check(True, "https://fhir.example.org/r4")
    with pytest.raises(BadRequestError, match="https"):
        check(True, "http://fhir.local/r4")
    with pytest.raises(ForbiddenError):
        check(False, "https://fhir.example.org/r4/../admin")
    with pytest.raises(ForbiddenError):
        check(True, "https://fhir.example.org.evil.example/r4")


def test_issued_cards_are_stored_with_identifiers_only(cds: CdsClient) -> None:
    body = json.loads(
        (
            __import__("pathlib").Path(__file__).resolve().parents[2]
            / "data"
            / "cdshooks"
            / "order-select.request.json"
        ).read_text()
    )
    body.pop("_service")
    card = cds.call("test-order-select", body).json()["cards"][0]
    engine = create_engine(cds.settings.database_url)
    with engine.connect() as conn:
        row = conn.execute(select(CdsCard).where(CdsCard.uuid == card["uuid"])).one()
    engine.dispose()
    assert row.service_id == "test-order-select"
    assert row.hook_instance == body["hookInstance"]
    assert row.patient_id == "1288992"
    assert row.indicator == "warning"
    assert row.card_kind == "urn:oncocds:card-kind|test-order"
    assert row.suggestion_uuids == [card["suggestions"][0]["uuid"]]
    assert row.recommendations[0]["actions"] == [
        {"type": "create", "resourceType": "ServiceRequest"}
    ]
    assert row.override_reason_codes == [
        "urn:oncocds:override|already-done",
        "urn:oncocds:override|not-indicated",
    ]
    call = cds.audit_rows("cds-hooks.call")[-1]
    assert call.entities == [{"type": "cds-card", "id": card["uuid"], "role": "warning"}]
    assert call.hook_instance == body["hookInstance"]
    assert call.agent_who == "https://ehr.example.org"
    assert call.agent_user == "PractitionerRole/123"
    assert call.details["status"] == 200


def test_a_failing_service_is_a_500_outcome_and_audited(make_cds_client: Any) -> None:
    def broken(request: Any) -> CdsResponse:
        raise RuntimeError("boom with PHI Jane Doe")

    definition = CdsServiceDefinition(
        id="broken", hook="patient-view", description="fails", handler=broken
    )
    cds = make_cds_client(services=[definition])
    response = cds.call("broken", patient_view_body())
    assert response.status_code == 500
    assert "Jane Doe" not in response.text
    assert cds.audit_rows("cds-hooks.call")[-1].details["status"] == 500


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "bad id"}, "URL-safe"),
        ({"prefetch": {"k": "https://evil.example/Patient/1"}}, "relative"),
        ({"prefetch": {"k": "Patient/{{context.medications}}"}}, "not a prefetch token"),
        ({"prefetch": {"k": "Patient/{{today()}}"}}, "unsupported token"),
        ({"prefetch": {"k": "../Patient"}}, "must not contain"),
        ({"prefetch": {"k": "patient?x=1"}}, "resource type"),
        ({"required_prefetch": frozenset({"nope"})}, "required keys"),
    ],
)
def test_service_definitions_are_checked(kwargs: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "id": "ok",
        "hook": "patient-view",
        "description": "d",
        "handler": lambda r: CdsResponse(),
    }
    values.update(kwargs)
    with pytest.raises(ServiceDefinitionError, match=message):
        CdsServiceDefinition(**values)


def test_cors_allows_only_configured_origins(make_cds_client: Any) -> None:
    cds = make_cds_client(cds_hooks={"cors_origins": ["https://sandbox.cds-hooks.org"]})
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    ok = cds.http.options(
        "/cds-services/test-patient-view",
        headers={"Origin": "https://sandbox.cds-hooks.org", **preflight},
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    bad = cds.http.options(
        "/cds-services/test-patient-view", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in bad.headers
