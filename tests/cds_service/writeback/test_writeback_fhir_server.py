"""End to end: write-back of a report Bundle to a real FHIR server (medplum, issue 3's fixture).

Runs after the branches are merged: ``tests.support.fhir_server`` (issue 3) provides the
``fhir_server`` fixture, an object with ``base_url`` (the FHIR R4 base of a running medplum
server). Access tokens come from the validating SMART token endpoint peer of ``peers.py``; if the
FHIR server fixture enforces its own tokens, point ``token_url`` at that server's token endpoint
instead. Not run on the issue-4 branch on its own (the fixture module does not exist there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_service.analyses.service import store_analysis
from cds_service.settings import Settings
from cds_service.writeback.service import WritebackRunner, build_client, enqueue_writeback
from integrations.fhir.genomics_profiles import check_resource
from tests.cds_service.writeback.conftest import WritebackSettings
from tests.genomics_examples import ISSUED, braf_crc_interpretation
from tests.support.fhir_server import fhir_server, fhir_server_session

__all__ = ["fhir_server", "fhir_server_session"]  # imported pytest fixtures, used by name


def test_report_bundle_is_written_to_a_real_fhir_server(
    *,
    make_settings: Callable[..., Settings],
    sqlite_url: str,
    smart_writeback: WritebackSettings,
    fhir_server: Any,
) -> None:
    base_url = str(fhir_server.base_url).rstrip("/")
    settings = make_settings(
        database_url=sqlite_url,
        writeback=smart_writeback(base_url, max_attempts=3, backoff_seconds=0.2),
        jobs={"in_process": False},  # the test runs the round itself
    )
    from cds_service.app import create_app

    app: FastAPI = create_app(settings)
    with TestClient(app), build_client(settings.writeback) as smart:
        with app.state.sessionmaker.begin() as session:
            analysis = store_analysis(
                session, braf_crc_interpretation(), "Patient/p1", "vcf", issued=ISSUED
            )
            job = enqueue_writeback(session, analysis, settings.writeback)
            assert job is not None
            job_id = job.id
        runner = WritebackRunner(settings.writeback, app.state.sessionmaker, app.state.audit, smart)
        done = runner.run(job_id)
        assert done.status == "done", done.last_error
        token = smart.access_token()

    report_locations = [
        loc for loc in done.response_locations if loc.startswith("DiagnosticReport/")
    ]
    assert len(report_locations) == 1
    resource_path = "/".join(report_locations[0].split("/")[:2])
    response = httpx.get(
        f"{base_url}/{resource_path}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
        timeout=30,
    )
    assert response.status_code == 200
    report = response.json()
    assert report["code"]["coding"][0]["code"] == "51969-4"
    assert check_resource(report) == []
    # The server resolved the bundle's urn:uuid references to its own ids.
    assert all(r["reference"].startswith("Observation/") for r in report["result"])
    assert len(report["result"]) == 3
