"""``POST /api/v1/analyses``: FHIR Bundle, VCF and text uploads → stored Genomics report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cds_service.models import AuditRecord
from integrations.fhir.genomics_profiles import check_bundle

DATA = Path(__file__).resolve().parents[2] / "data"


def _bundle_with_patient_and_condition() -> dict[str, Any]:
    bundle = json.loads((DATA / "fhir" / "stu3_braf_report_bundle.json").read_text())
    bundle["entry"].insert(
        0, {"resource": {"resourceType": "Patient", "id": "p-crc-1", "gender": "female"}}
    )
    bundle["entry"].insert(
        1,
        {
            "resource": {
                "resourceType": "Condition",
                "id": "c1",
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "code": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C18.9"}]
                },
                "subject": {"reference": "Patient/p-crc-1"},
            }
        },
    )
    return bundle


def _therapy_names(bundle: dict[str, Any]) -> set[str]:
    names = set()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "Observation":
            continue
        for component in resource.get("component", []):
            if component["code"]["coding"][0].get("code") == "51963-7":
                concept = component["valueCodeableConcept"]
                codings = concept.get("coding") or [{}]
                names.add(codings[0].get("display") or concept["text"])
    return names


def test_fhir_bundle_with_condition(client: TestClient) -> None:
    response = client.post(
        "/api/v1/analyses",
        content=json.dumps(_bundle_with_patient_and_condition()),
        headers={"content-type": "application/fhir+json"},
    )
    assert response.status_code == 201, response.text
    bundle = response.json()
    assert check_bundle(bundle) == []
    assert {"encorafenib", "cetuximab"} <= _therapy_names(bundle)
    report = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    assert report["subject"]["reference"] == "Patient/p-crc-1"
    again = client.get(response.headers["location"])
    assert again.status_code == 200
    assert again.json() == bundle


def test_vcf_upload_with_tumour_type(client: TestClient, database_url: str) -> None:
    vcf = (DATA / "vcf" / "pcgr_T001-COAD.grch38.vcf.gz").read_bytes()
    response = client.post(
        "/api/v1/analyses?tumour_type=COAD&patient=Patient/tcga-a6-2686&format=vcf",
        content=vcf,
        headers={"content-type": "application/octet-stream", "X-Request-Id": "upload-1"},
    )
    assert response.status_code == 201, response.text
    assert {"encorafenib", "cetuximab"} <= _therapy_names(response.json())
    analysis_id = response.headers["x-analysis-id"]
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditRecord.event_type, AuditRecord.patient_id, AuditRecord.entities).where(
                AuditRecord.request_id == "upload-1"
            )
        ).all()
    engine.dispose()
    assert [(r.event_type, r.patient_id) for r in rows] == [
        ("analysis.create", "Patient/tcga-a6-2686")
    ]
    assert rows[0].entities == [{"type": "Analysis", "id": analysis_id}]


def test_text_list_upload(client: TestClient) -> None:
    response = client.post(
        "/api/v1/analyses?tumour_type=LUAD&patient=Patient/x1",
        content=b"EGFR p.L858R\nKRAS G12D\n",
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 201, response.text
    names = _therapy_names(response.json())
    assert "osimertinib" in names
    assert "sotorasib" not in names


def test_unknown_tumour_type_is_operation_outcome(client: TestClient) -> None:
    response = client.post(
        "/api/v1/analyses?tumour_type=colon%20adenocarcinom&patient=Patient/x1",
        content=b"BRAF V600E\n",
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert "unknown tumour type" in issue["diagnostics"]
    assert "COAD" in issue["diagnostics"]


def test_unreadable_inputs_are_400(client: TestClient) -> None:
    empty = client.post("/api/v1/analyses?patient=Patient/x", content=b"  ")
    assert empty.status_code == 400
    bad_json = client.post(
        "/api/v1/analyses", content=b"{nope", headers={"content-type": "application/fhir+json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["resourceType"] == "OperationOutcome"
    no_patient = client.post(
        "/api/v1/analyses", content=b"BRAF V600E\n", headers={"content-type": "text/plain"}
    )
    assert no_patient.status_code == 400
    assert "patient reference is required" in no_patient.json()["issue"][0]["diagnostics"]
    nothing = client.post(
        "/api/v1/analyses?patient=Patient/x",
        content=b"### nothing here ###\n",
        headers={"content-type": "text/plain"},
    )
    assert nothing.status_code == 400
