"""``/api/v1/imaging-analyses``: uploads and references → 202 → a job → the FHIR Bundle.

The model is the tiny bundle ``oncocds train`` exports in this session (conftest): these tests
check the plumbing (what is stored, reused, refused, audited, returned), never accuracy.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.cds_service.imaging.conftest import ImagingApp
from tests.integrations.imaging import dicom_factory as f

API = "/api/v1/imaging-analyses"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring ``width x height``, with one tiny IDAT (a bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def tissue_png() -> bytes:
    """A 200x200 mosaic of the two real IDC patches and IHC tissue (real H&E-like pixels)."""
    mosaic = np.asarray(f.ihc_image()[:200, :200]).copy()
    mosaic[:50, :50] = f.idc_patch(0)
    mosaic[50:100, 50:100] = f.idc_patch(1)
    return png(mosaic)


@pytest.fixture
def imaging(
    make_imaging_app: Callable[..., ImagingApp], database_url: str, imaging_bundle: Path
) -> ImagingApp:
    return make_imaging_app(database_url, bundle=imaging_bundle)


def upload(app: ImagingApp, body: bytes, content_type: str = "image/png", **params: str) -> Any:
    params = {"patient": "Patient/p1", **params}
    return app.post(API, content=body, headers={"Content-Type": content_type}, params=params)


def test_upload_is_accepted_analysed_and_returned_as_fhir(imaging: ImagingApp) -> None:
    data = tissue_png()
    answer = upload(imaging, data, derivedFrom="DocumentReference/d1")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    location = answer.headers["Location"]
    assert location == f"{API}/{body['id']}"
    assert body["status"] == "in-progress"
    assert [r["status"] for r in body["results"]] == ["pending"]

    # Not run yet: the chart/API never waits on the model.
    waiting = imaging.get(location)
    assert waiting.status_code == 202
    assert waiting.json()["status"] == "in-progress"

    outcomes = imaging.run_jobs()
    assert [o.status for o in outcomes] == ["succeeded"]

    done = imaging.get(location)
    assert done.status_code == 200, done.text
    assert done.headers["content-type"].startswith("application/fhir+json")
    bundle = done.json()
    resources = [e["resource"] for e in bundle["entry"]]
    kinds = [r["resourceType"] for r in resources]
    assert kinds.count("DiagnosticReport") == 1
    assert kinds.count("Observation") == 1
    report = resources[kinds.index("DiagnosticReport")]
    assert report["subject"]["reference"] == "Patient/p1"
    observation = resources[kinds.index("Observation")]
    assert observation["derivedFrom"][0]["reference"] == "DocumentReference/d1"

    heatmap = imaging.get(f"{location}/heatmaps/0.png")
    assert heatmap.status_code == 200
    assert heatmap.content.startswith(PNG_SIGNATURE)
    assert imaging.get(f"{location}/heatmaps/1.png").status_code == 404

    (classified,) = imaging.audit("imaging.classify")
    assert classified.patient_id == "Patient/p1"
    assert classified.details["outcome"] in {"positive", "negative", "indeterminate"}
    assert classified.details["bundle_sha256"] == imaging.app.state.imaging.model.bundle_sha256
    assert classified.details["reused"] is False
    (fetched,) = imaging.audit("imaging.fetch")
    assert fetched.details["source"] == "inline-attachment"
    assert fetched.details["sha256"] == hashlib.sha256(data).hexdigest()


def test_the_same_image_again_reuses_the_stored_result(imaging: ImagingApp) -> None:
    data = tissue_png()
    first = upload(imaging, data, derivedFrom="DocumentReference/d1").json()
    imaging.run_jobs()
    second = upload(imaging, data, derivedFrom="DocumentReference/d1")
    assert second.status_code == 202
    body = second.json()
    assert body["results"][0]["id"] == first["results"][0]["id"]
    assert body["status"] == "done"
    assert imaging.run_jobs() == []  # nothing enqueued: no second inference
    assert len(imaging.audit("imaging.classify")) == 1


def test_an_upload_without_a_fhir_source_is_analysed_but_has_no_fhir_report(
    imaging: ImagingApp,
) -> None:
    location = upload(imaging, tissue_png()).headers["Location"]
    imaging.run_jobs()
    answer = imaging.get(location)
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "done"
    assert body["fhir"].startswith("not available")
    assert imaging.get(f"{location}/heatmaps/0.png").status_code == 200


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", b"not an image"),
        ("image/gif", b"GIF89a" + b"\x00" * 40),
        ("image/png", b"\xff\xd8\xff\xe0" + b"\x00" * 40),  # JPEG bytes declared as PNG
        ("application/dicom", b"\x00" * 200),  # no DICM preamble
    ],
)
def test_unsupported_types_are_415_operation_outcomes(
    imaging: ImagingApp, content_type: str, data: bytes
) -> None:
    answer = upload(imaging, data, content_type)
    assert answer.status_code == 415
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-supported"
    assert imaging.run_jobs() == []


def test_an_oversized_upload_is_413(
    make_imaging_app: Callable[..., ImagingApp], database_url: str, imaging_bundle: Path
) -> None:
    app = make_imaging_app(database_url, bundle=imaging_bundle, max_upload_bytes=4096)
    answer = upload(app, PNG_SIGNATURE + b"\x00" * 5000)
    assert answer.status_code == 413
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_a_decompression_bomb_fails_its_job_saying_so(imaging: ImagingApp) -> None:
    location = upload(imaging, png_declaring(9_000, 9_000)).headers["Location"]
    (outcome,) = imaging.run_jobs()
    assert outcome.status == "dead"  # no retry can help
    assert "pixels" in outcome.error
    answer = imaging.get(location).json()
    assert answer["status"] == "failed"
    # 81 million declared pixels: our limit (64 million) refuses it before Pillow's own guard.
    assert "81000000 pixels" in answer["results"][0]["error"]
    assert "over the 64000000 limit" in answer["results"][0]["error"]
    assert imaging.audit("imaging.classify") == []
    (fetched,) = imaging.audit("imaging.fetch")
    assert fetched.outcome_desc is not None
    assert "pixels" in fetched.outcome_desc


def test_a_study_off_the_allowlist_is_refused_and_audited(imaging: ImagingApp) -> None:
    body = {
        "patient": "Patient/p1",
        "studies": [{"endpoint": "http://pacs.elsewhere.example/dicom-web", "studyUid": "1.2.3"}],
    }
    answer = imaging.post(API, json=body)
    assert answer.status_code == 403
    assert answer.json()["resourceType"] == "OperationOutcome"
    refused = imaging.audit("imaging.request")
    assert refused[-1].outcome != 0
    assert "allowlist" in (refused[-1].outcome_desc or "")
    assert imaging.run_jobs() == []


def test_without_a_bundle_the_api_is_503_and_the_service_not_offered(
    make_imaging_app: Callable[..., ImagingApp], database_url: str
) -> None:
    app = make_imaging_app(database_url, bundle=None)
    answer = upload(app, tissue_png())
    assert answer.status_code == 503
    assert "no model bundle configured" in answer.json()["issue"][0]["diagnostics"]
    services = app.get("/cds-services").json()["services"]
    assert "histopathology-ai" not in {s["id"] for s in services}
    ready = app.http.get("/readyz").json()["checks"]["imaging"]
    assert ready["histopathology_ai"] == "not offered"
    assert "ONCOCDS_IMAGING__BUNDLE_PATH" in ready["reason"]


def test_a_broken_bundle_makes_the_service_not_ready(
    make_imaging_app: Callable[..., ImagingApp], database_url: str, tmp_path: Path
) -> None:
    broken = tmp_path / "not-a-bundle"
    broken.mkdir()
    app = make_imaging_app(database_url, bundle=broken)
    ready = app.http.get("/readyz")
    assert ready.status_code == 503
    assert "failed verification" in ready.json()["checks"]["imaging"]["reason"]


def test_the_routes_refuse_without_a_client_jwt(imaging: ImagingApp) -> None:
    assert imaging.http.post(API, content=tissue_png()).status_code == 401
    assert imaging.http.get(f"{API}/00000000-0000-0000-0000-000000000000").status_code == 401
    assert len(imaging.audit("auth.rejected")) == 2


def test_the_genomic_report_page_shows_the_patients_imaging_results(imaging: ImagingApp) -> None:
    """The report page of a stored genomic analysis of Patient/p1 gains the imaging section
    once an imaging result of the installed model is done for that patient (and only then)."""
    from cds_service.analyses.service import store_analysis
    from cds_service.reports.tokens import report_secret, sign_report_token
    from tests.genomics_examples import ISSUED, braf_crc_interpretation

    with imaging.app.state.sessionmaker.begin() as session:
        analysis_id = store_analysis(
            session, braf_crc_interpretation(), "Patient/p1", "vcf", issued=ISSUED
        ).id
    token = sign_report_token(report_secret(imaging.settings), analysis_id, ttl_seconds=600)
    page = f"/reports/{analysis_id}?t={token}"

    upload(imaging, tissue_png(), derivedFrom="DocumentReference/d1")
    before = imaging.http.get(page)
    assert before.status_code == 200
    assert 'id="imaging"' not in before.text  # the job has not run: nothing to show yet

    imaging.run_jobs()
    after = imaging.http.get(page)
    assert after.status_code == 200
    assert 'id="imaging"' in after.text
    assert "AI-generated; requires pathologist review" in after.text
