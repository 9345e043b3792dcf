"""The test FHIR server as a browser client (the CDS Hooks sandbox) uses it: ``/metadata``,
form-encoded ``POST [type]/_search`` and CORS, over real HTTP; and its identifier index, which
conditional creates (write-back) search through."""

from __future__ import annotations

import httpx

from tests.support.fhir_server import FhirServer, fhir_server, fhir_server_session

__all__ = ["fhir_server", "fhir_server_session"]

ORIGIN = "http://127.0.0.1:9"  # a page origin other than the server's own
LOINC_VARIANT = "http://loinc.org|69548-6"


def _observation(oid: str, patient: str, code: str) -> dict[str, object]:
    system, value = code.split("|")
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": system, "code": value}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


def test_metadata_is_an_r4_capability_statement(fhir_server: FhirServer) -> None:
    response = httpx.get(f"{fhir_server.base_url}/metadata", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"  # the sandbox builds R4 MedicationRequests on it
    assert statement["kind"] == "instance"
    rest = statement["rest"][0]
    assert rest["mode"] == "server"
    types = {r["type"]: {i["code"] for i in r["interaction"]} for r in rest["resource"]}
    for needed in ("Patient", "Condition", "Observation", "MedicationRequest"):
        assert {"read", "search-type"} <= types[needed]
    assert response.headers["access-control-allow-origin"] == "*"


def test_form_encoded_search_is_the_get_search(fhir_server: FhirServer) -> None:
    fhir_server.put({"resourceType": "Patient", "id": "p1"})
    fhir_server.put({"resourceType": "Patient", "id": "p2"})
    fhir_server.put(_observation("o1", "p1", LOINC_VARIANT))
    fhir_server.put(_observation("o2", "p1", "http://loinc.org|84413-4"))
    fhir_server.put(_observation("o3", "p2", LOINC_VARIANT))
    params = {"patient": "p1", "category": "laboratory", "code": LOINC_VARIANT}
    posted = httpx.post(
        f"{fhir_server.base_url}/Observation/_search",
        content=str(httpx.QueryParams(params)),  # the body the sandbox sends
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": ORIGIN},
    )
    assert posted.status_code == 200, posted.text
    bundle = posted.json()
    assert bundle["type"] == "searchset"
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["o1"]
    got = httpx.get(f"{fhir_server.base_url}/Observation", params=params).json()
    assert [e["resource"]["id"] for e in got["entry"]] == ["o1"]
    assert posted.headers["access-control-allow-origin"] == "*"
    logged = fhir_server.requests()[-2]
    assert logged["method"] == "POST"
    assert logged["url"].startswith("/Observation?")


def test_json_post_to_search_is_not_read_as_a_form(fhir_server: FhirServer) -> None:
    """Only a form body is a search; anything else goes to the router unchanged (control)."""
    response = httpx.post(
        f"{fhir_server.base_url}/Observation/_search",
        content="patient=p1",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code >= 400


def test_cors_preflight_allows_the_sandbox_request_headers(fhir_server: FhirServer) -> None:
    response = httpx.options(
        f"{fhir_server.base_url}/Observation/_search",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "content-type" in allowed
    assert "authorization" in allowed


URI = "urn:ietf:rfc:3986"


def _transaction(*ids: str) -> dict[str, object]:
    """A transaction of conditional creates keyed on identifiers, as write-back posts them."""
    entries = []
    for n, uid in enumerate(ids):
        resource = _observation(f"x{n}", "p1", LOINC_VARIANT)
        del resource["id"]
        resource["identifier"] = [{"system": URI, "value": f"urn:uuid:{uid}"}]
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uid}",
                "resource": resource,
                "request": {
                    "method": "POST",
                    "url": "Observation",
                    "ifNoneExist": f"identifier={URI}|urn:uuid:{uid}",
                },
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _total(fhir_server: FhirServer, query: str) -> int:
    bundle = httpx.get(f"{fhir_server.base_url}/Observation?{query}").json()
    return int(bundle["total"])


def test_conditional_creates_by_identifier_create_once_and_follow_updates(
    fhir_server: FhirServer,
) -> None:
    ids = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(3)]
    for _ in range(2):  # the same write-back posted twice (a retried round)
        response = httpx.post(fhir_server.base_url, json=_transaction(*ids))
        assert response.status_code == 200, response.text
    assert _total(fhir_server, "_count=100") == 3
    for uid in ids:
        assert _total(fhir_server, f"identifier={URI}|urn:uuid:{uid}") == 1
    # Other token shapes are MemoryRepository's own search, and agree.
    assert _total(fhir_server, f"identifier=urn:uuid:{ids[0]}") == 1
    # An update that changes the identifier moves the resource in the index.
    first = httpx.get(f"{fhir_server.base_url}/Observation?identifier={URI}|urn:uuid:{ids[0]}")
    resource = first.json()["entry"][0]["resource"]
    resource["identifier"] = [{"system": URI, "value": "urn:uuid:moved"}]
    fhir_server.put(resource)
    assert _total(fhir_server, f"identifier={URI}|urn:uuid:{ids[0]}") == 0
    assert _total(fhir_server, f"identifier={URI}|urn:uuid:moved") == 1
