"""Storing analyses and reading the report Bundle back over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds_service.analyses.service import load_interpretation, store_analysis
from cds_service.errors import BadRequestError
from cds_service.models import AuditRecord
from tests.genomics_examples import ISSUED, braf_crc_interpretation, dpyd_interpretation

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "fhir_golden"


def _store(app: FastAPI, *, patient: str = "Patient/p1", factory=braf_crc_interpretation) -> str:  # type: ignore[no-untyped-def]
    with app.state.sessionmaker.begin() as session:
        analysis = store_analysis(session, factory(), patient, "vcf", issued=ISSUED)
        return analysis.id


def test_store_and_get_returns_the_stored_bundle(app: FastAPI, client: TestClient) -> None:
    analysis_id = _store(app)
    response = client.get(f"/api/v1/analyses/{analysis_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    # The same bundle as the reviewed golden file (same interpretation, patient and time).
    assert response.json() == json.loads((GOLDEN / "braf_v600e_crc.json").read_text())


def test_stored_interpretation_round_trips(app: FastAPI, client: TestClient) -> None:
    analysis_id = _store(app, factory=dpyd_interpretation)
    with app.state.sessionmaker() as session:
        from cds_service.analyses.repository import get_analysis

        analysis = get_analysis(session, analysis_id)
        assert analysis is not None
        assert load_interpretation(analysis) == dpyd_interpretation()
        assert analysis.tumour_type_code == "COADREAD"
        assert analysis.patient_ref == "Patient/p1"
        assert analysis.created.tzinfo is not None


@pytest.mark.parametrize("bad_id", [str(uuid.uuid4()), "not-a-uuid", "1%20OR%201=1"])
def test_unknown_analysis_is_404_operation_outcome(client: TestClient, bad_id: str) -> None:
    response = client.get(f"/api/v1/analyses/{bad_id}")
    assert response.status_code == 404
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"


def test_reading_an_analysis_is_audited(app: FastAPI, client: TestClient) -> None:
    analysis_id = _store(app, patient="Patient/audited")
    client.get(f"/api/v1/analyses/{analysis_id}")
    with app.state.sessionmaker() as session:
        records = session.scalars(
            select(AuditRecord).where(AuditRecord.event_type == "analysis.read")
        ).all()
    assert [(r.patient_id, r.entities) for r in records] == [
        ("Patient/audited", [{"type": "Analysis", "id": analysis_id}])
    ]


def test_store_refuses_bad_input(app: FastAPI, client: TestClient) -> None:
    with app.state.sessionmaker() as session:
        with pytest.raises(BadRequestError, match="source kind"):
            store_analysis(session, braf_crc_interpretation(), "Patient/p1", "email")  # type: ignore[arg-type]
        with pytest.raises(BadRequestError, match="patient reference"):
            store_analysis(session, braf_crc_interpretation(), "", "vcf")
