"""``histopathology-ai`` on ``patient-view``: listed with a bundle, never blocks a chart open,
shows the stored result later, says "unavailable" when its job failed.

Images live on the real test FHIR server (DocumentReference + Binary). The PACS that never
answers is a local socket that accepts and stays silent: a misbehaving peer no real PACS can be
made to be on demand (a fake at the network edge). The model is the tiny session bundle; no
accuracy claim is made.
"""

from __future__ import annotations

import base64
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cds_service.db.base import utcnow
from cds_service.jobs import ResourcePool
from tests.cds_service.imaging.conftest import ImagingApp, run_due_jobs
from tests.cds_service.imaging.test_imaging_api import png, tissue_png
from tests.integrations.imaging import dicom_factory as f
from tests.support.fhir_server import FhirServer
from tests.support.jobs import run_due

SERVICE = "histopathology-ai"
NOTICE = "AI-generated; requires pathologist review"


def chart_open(
    app: ImagingApp, prefetch: dict[str, Any], *, fhir_server: str | None = None
) -> list[dict[str, Any]]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr1", "patientId": "p1"},
        "prefetch": prefetch,
    }
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    answer = app.call(SERVICE, body)
    assert answer.status_code == 200, answer.text
    cards: list[dict[str, Any]] = answer.json()["cards"]
    return cards


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def pathology_document(doc_id: str, binary_id: str) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "status": "current",
        "subject": {"reference": "Patient/p1"},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "11526-1"}]}],
        "content": [{"attachment": {"contentType": "image/png", "url": f"Binary/{binary_id}"}}],
    }


@pytest.fixture
def fhir_app(
    make_imaging_app: Callable[..., ImagingApp],
    database_url: str,
    imaging_bundle: Path,
    fhir_server: FhirServer,
) -> ImagingApp:
    base = fhir_server.base_url
    return make_imaging_app(
        database_url, bundle=imaging_bundle, allowlist=(base,), fhir_servers=(base,)
    )


def test_listed_in_discovery_with_a_bundle(fhir_app: ImagingApp) -> None:
    services = {s["id"]: s for s in fhir_app.get("/cds-services").json()["services"]}
    assert services[SERVICE]["hook"] == "patient-view"
    assert "ImagingStudy" in services[SERVICE]["prefetch"]["imagingStudies"]
    ready = fhir_app.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["imaging"]["histopathology_ai"] == "offered"


def test_first_open_enqueues_and_returns_at_once_a_later_open_shows_the_result(
    fhir_app: ImagingApp, fhir_server: FhirServer
) -> None:
    fhir_server.put(
        {
            "resourceType": "Binary",
            "id": "slide1",
            "contentType": "image/png",
            "data": base64.b64encode(tissue_png()).decode(),
        }
    )
    document = pathology_document("path1", "slide1")
    fhir_server.put(document)
    prefetch = {"imagingStudies": None, "pathologyDocuments": searchset(document), "media": None}

    first = chart_open(fhir_app, prefetch, fhir_server=fhir_server.base_url)
    assert [c["indicator"] for c in first] == ["info"]
    assert "in progress" in first[0]["summary"]
    # Open again before the job ran: still in progress, no second job.
    again = chart_open(fhir_app, prefetch, fhir_server=fhir_server.base_url)
    assert "in progress" in again[0]["summary"]

    outcomes = fhir_app.run_jobs()
    assert [o.status for o in outcomes] == ["succeeded"]
    gets = [r["url"] for r in fhir_server.requests() if r["method"] == "GET"]
    assert "/DocumentReference/path1" in gets
    assert "/Binary/slide1" in gets

    later = chart_open(fhir_app, prefetch, fhir_server=fhir_server.base_url)
    (card,) = later
    assert card["indicator"] in {"info", "warning"}  # never critical
    assert NOTICE in card["detail"]
    assert "DocumentReference" in card["summary"]
    (link,) = card["links"]
    assert link["type"] == "absolute"
    assert "/reports/imaging/" in link["url"]
    page = fhir_app.http.get(link["url"].removeprefix("http://testserver"))
    assert page.status_code == 200
    assert 'data-status="done"' in page.text
    assert NOTICE.split(";", maxsplit=1)[0] in page.text
    assert page.headers["cache-control"] == "no-store"

    shown = fhir_app.audit("imaging.classify")
    assert len(shown) == 1
    assert shown[0].patient_id == "Patient/p1"
    fetches = fhir_app.audit("imaging.fetch")
    assert [f.details["reference"] for f in fetches] == ["DocumentReference/path1#content[0]"]


def test_the_card_is_never_critical_whatever_the_outcome(
    fhir_app: ImagingApp, fhir_server: FhirServer
) -> None:
    """Three images (tissue, blank glass, IHC): each card is info or warning."""
    blank = png(np.full((120, 120, 3), 245, dtype=np.uint8))
    ihc = png(np.ascontiguousarray(f.ihc_image()[:150, :150]))
    documents = []
    for n, data in enumerate([tissue_png(), blank, ihc]):
        fhir_server.put(
            {
                "resourceType": "Binary",
                "id": f"b{n}",
                "contentType": "image/png",
                "data": base64.b64encode(data).decode(),
            }
        )
        documents.append(pathology_document(f"d{n}", f"b{n}"))
        fhir_server.put(documents[-1])
    prefetch = {"pathologyDocuments": searchset(*documents), "imagingStudies": None, "media": None}
    chart_open(fhir_app, prefetch, fhir_server=fhir_server.base_url)
    assert {o.status for o in fhir_app.run_jobs()} == {"succeeded"}
    cards = chart_open(fhir_app, prefetch, fhir_server=fhir_server.base_url)
    assert len(cards) == 3
    assert {c["indicator"] for c in cards} <= {"info", "warning"}
    assert all(NOTICE in c["detail"] for c in cards)


@pytest.fixture
def silent_pacs() -> Iterator[str]:
    """A socket that accepts connections and never answers (a PACS that times out)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/dicom-web"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


def test_a_pacs_timeout_is_retried_then_unavailable_and_replayable(
    make_imaging_app: Callable[..., ImagingApp],
    database_url: str,
    imaging_bundle: Path,
    silent_pacs: str,
) -> None:
    app = make_imaging_app(
        database_url,
        bundle=imaging_bundle,
        allowlist=(silent_pacs,),
        request_timeout_s=0.3,
        fetch_deadline_s=1.0,
    )
    study = {
        "resourceType": "ImagingStudy",
        "id": "s1",
        "status": "available",
        "subject": {"reference": "Patient/p1"},
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.826.0.1.3680043.2.1"}],
        "endpoint": [{"reference": "Endpoint/e1"}],
    }
    endpoint = {
        "resourceType": "Endpoint",
        "id": "e1",
        "status": "active",
        "address": silent_pacs,
        "connectionType": {"code": "dicom-wado-rs"},
        "payloadType": [{"text": "DICOM"}],
    }
    prefetch = {
        "imagingStudies": searchset(study, endpoint),
        "pathologyDocuments": None,
        "media": None,
    }
    assert "in progress" in chart_open(app, prefetch)[0]["summary"]

    (first,) = app.run_jobs()
    assert first.status == "failed"  # will retry with backoff
    assert "did not answer in time" in (first.error or "")
    cards = chart_open(app, prefetch)
    assert "in progress" in cards[0]["summary"]  # retrying: not yet unavailable

    # Later rounds, each after its backoff, until the attempts are spent.
    outcomes = [first]
    for minutes in range(1, 10):
        later = utcnow() + timedelta(minutes=20 * minutes)
        outcomes += _run_at(app, later)
        if outcomes[-1].status == "dead":
            break
    assert outcomes[-1].status == "dead"
    assert len(outcomes) == 5
    (card,) = chart_open(app, prefetch)
    assert card["indicator"] == "info"
    assert "unavailable" in card["summary"]
    assert "did not answer in time" in card["detail"]
    assert "1.2.826" not in card["detail"]  # the reason names the host only

    fetches = app.audit("imaging.fetch")
    assert len(fetches) == 5
    assert all(f.details["study_uid"] == "1.2.826.0.1.3680043.2.1" for f in fetches)

    # Listed and replayable through the jobs interface.
    from cds_service.jobs import list_jobs, replay

    with app.app.state.sessionmaker.begin() as session:
        (dead,) = [j for j in list_jobs(session, status="dead") if j.kind == "imaging.analyse"]
        replay(session, dead.id)
    (again,) = run_due_jobs(app.app)
    assert again.status == "failed"  # the PACS is still silent; retried again


def _run_at(app: ImagingApp, now: Any) -> list[Any]:
    return run_due(
        app.app.state.sessionmaker,
        app.settings,
        limit=5,
        now=now,
        worker_id="test",
        resources=ResourcePool(app.settings),
    )
