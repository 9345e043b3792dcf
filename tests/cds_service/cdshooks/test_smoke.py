"""Smoke: discovery and one call with a valid token."""

from __future__ import annotations

from tests.cds_service.cdshooks.conftest import CdsClient, patient_view_body


def test_discovery_and_call(cds: CdsClient) -> None:
    response = cds.discovery()
    assert response.status_code == 200, response.text
    ids = [s["id"] for s in response.json()["services"]]
    assert "test-patient-view" in ids
    response = cds.call("test-patient-view", patient_view_body())
    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["summary"] == "Test card for patient p1"
