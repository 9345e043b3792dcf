"""Write-back of an imaging report through the existing write-back: a finished imaging request
becomes an analysis of kind ``imaging`` whose transaction Bundle the ``writeback.round`` job
posts (SMART Backend Services) to the real test FHIR server (medplum).

The token endpoint is the validating SMART peer of ``tests/cds_service/writeback/peers.py``
(a local server: no SMART authorisation server runs in the test environment). The model is the
tiny session bundle: plumbing only, no accuracy claim.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from cds_service.models.analysis import Analysis, WritebackJob
from cds_service.writeback.service import build_client
from tests.cds_service.imaging.conftest import ImagingApp
from tests.cds_service.imaging.test_imaging_api import API, tissue_png
from tests.cds_service.writeback.conftest import (
    WritebackSettings,
    ec_key,
    key_file,
    peers,
    rsa_key,
    smart_writeback,
)
from tests.support.fhir_server import FhirServer

__all__ = ["ec_key", "key_file", "peers", "rsa_key", "smart_writeback"]


def test_a_finished_imaging_report_is_written_back_to_the_ehr(
    *,
    make_imaging_app: Callable[..., ImagingApp],
    sqlite_url: str,
    imaging_bundle: Path,
    fhir_server: FhirServer,
    smart_writeback: WritebackSettings,
) -> None:
    base_url = fhir_server.base_url
    app = make_imaging_app(
        sqlite_url,
        bundle=imaging_bundle,
        writeback=smart_writeback(base_url, max_attempts=2, backoff_seconds=0.1),
    )
    answer = app.post(
        API,
        content=tissue_png(),
        headers={"Content-Type": "image/png"},
        params={"patient": "Patient/p1", "derivedFrom": "DocumentReference/d1"},
    )
    assert answer.status_code == 202
    outcomes = app.run_jobs()
    # The analysis, then the write-back round it enqueued.
    assert [o.status for o in outcomes] == ["succeeded", "succeeded"]

    with app.app.state.sessionmaker() as session:
        (stored,) = session.scalars(select(Analysis).where(Analysis.source_kind == "imaging"))
        (job,) = session.scalars(select(WritebackJob))
        kinds = [e["resource"]["resourceType"] for e in stored.report_bundle["entry"]]
        locations = list(job.response_locations)
        status = job.status
    assert stored.report_bundle["type"] == "transaction"
    assert "DiagnosticReport" in kinds
    assert status == "done"
    (report_location,) = [loc for loc in locations if loc.startswith("DiagnosticReport/")]

    with build_client(app.settings.writeback) as smart:
        token = smart.access_token()
    path = "/".join(report_location.split("/")[:2])
    response = httpx.get(
        f"{base_url}/{path}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
        timeout=30,
    )
    assert response.status_code == 200
    report: dict[str, Any] = response.json()
    assert report["subject"]["reference"] == "Patient/p1"
    assert report["status"] == "preliminary"
    security = {c.get("code") for c in report.get("meta", {}).get("security", [])}
    assert "AIAST" in security
    assert all(r["reference"].startswith("Observation/") for r in report["result"])
    attempts = app.audit("writeback.attempt")
    assert [a.event_subtype for a in attempts] == ["done"]
