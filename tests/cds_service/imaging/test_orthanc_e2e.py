"""End to end with the real PACS: Orthanc's ``OnStableStudy`` Lua callback
(``cds_service/imaging/orthanc.lua``) notifies a real ``oncocds serve`` process, whose
in-process executor fetches the study over DICOMweb (bearer-protected Orthanc), analyses it
with the bundle ``oncocds train`` exported in this session, and stores the result before any
chart is opened; the chart open then shows it at once.

Images: secondary captures of the two real IDC patches and of a scikit-image IHC tile, and a
small multi-resolution whole-slide image DICOMized by ``OrthancWSIDicomizer``. Plumbing only:
no test here makes an accuracy claim.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydicom.uid import JPEGBaseline8Bit, generate_uid
from sqlalchemy import select

from cds_service.models.imaging import ImagingImage
from cds_service.security.signing import SigningKey, sign_client_jwt
from tests.cds_service.cdshooks.conftest import EHR_ISS, client_entry
from tests.cds_service.demo.conftest import Served, serve
from tests.integrations.imaging import dicom_factory as f
from tests.support.orthanc import OrthancServer, wait_for_study_result
from tests.support.processes import free_port

__all__ = ["serve"]

LUA = Path(__file__).resolve().parents[3] / "cds_service" / "imaging" / "orthanc.lua"
NOTIFY = "/api/v1/imaging/pacs-notifications"


def _wait_for_result(database_url: str, study_uid: str) -> Any:
    """The study's finished result and its images (label, instance UID, outcome)."""
    return wait_for_study_result(
        database_url,
        study_uid,
        lambda conn, row: conn.execute(
            select(ImagingImage.label, ImagingImage.instance_uid, ImagingImage.outcome)
            .where(ImagingImage.result_id == row.id)
            .order_by(ImagingImage.position)
        ).all(),
    )


def _start(
    serve: Callable[..., Served],
    tmp_path: Path,
    database_url: str,
    bundle: Path,
    key: SigningKey,
) -> tuple[Served, int, str]:
    pacs_port = free_port()
    dicomweb = f"http://127.0.0.1:{pacs_port}/dicom-web"
    token = f"notify-{uuid.uuid4().hex}"
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps({"clients": [client_entry([key])]}))
    served = serve(
        database_url,
        dev_setup=False,
        ONCOCDS_CLIENTS_FILE=str(clients),
        ONCOCDS_IMAGING__BUNDLE_PATH=str(bundle),
        ONCOCDS_IMAGING_SERVICE__ALLOWLIST=json.dumps([dicomweb]),
        ONCOCDS_IMAGING_SERVICE__PACS_DICOMWEB_URL=dicomweb,
        ONCOCDS_IMAGING_SERVICE__PACS_TOKEN="pacs-token",
        ONCOCDS_IMAGING_SERVICE__NOTIFY_TOKEN=token,
    )
    return served, pacs_port, token


def test_a_stable_study_is_analysed_before_the_chart_opens(
    serve: Callable[..., Served],
    tmp_path: Path,
    database_url: str,
    imaging_bundle: Path,
    client_key: SigningKey,
) -> None:
    served, pacs_port, token = _start(serve, tmp_path, database_url, imaging_bundle, client_key)
    env = {"ONCOCDS_NOTIFY_URL": served.url + NOTIFY, "ONCOCDS_NOTIFY_TOKEN": token}
    with OrthancServer.start(
        tmp_path / "pacs", auth="bearer", lua_scripts=(LUA,), env=env, port=pacs_port
    ) as pacs:
        study, series = generate_uid(), generate_uid()
        ihc_tile = np.ascontiguousarray(f.ihc_image()[128:384, 128:384])
        sources = [
            f.secondary_capture(f.idc_patch(0), study_uid=study, series_uid=series),
            f.secondary_capture(
                f.idc_patch(1), syntax=JPEGBaseline8Bit, study_uid=study, series_uid=series
            ),
            f.secondary_capture(
                ihc_tile, syntax=JPEGBaseline8Bit, study_uid=study, series_uid=series
            ),
        ]
        for ds in sources:
            pacs.upload(f.to_bytes(ds))
        row, images = _wait_for_result(served.database_url, study)

    assert row.status == "done", row.error
    assert sorted(i.instance_uid for i in images) == sorted(
        str(ds.SOPInstanceUID) for ds in sources
    )
    assert {i.outcome for i in images} <= {"positive", "negative", "indeterminate"}
    (request,) = served.audit("imaging.request")
    assert request.agent_who == "pacs"
    assert request.details["study_uid"] == study
    classified = served.audit("imaging.classify")
    assert len(classified) == 3
    assert {c.details["study_uid"] for c in classified} == {study}
    fetches = served.audit("imaging.fetch")
    assert {f.details["host"] for f in fetches} == {"127.0.0.1"}

    # The chart opens later: the stored result, at once (no "in progress").
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr1", "patientId": "p1"},
        "prefetch": {
            "imagingStudies": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "ImagingStudy",
                            "id": "st1",
                            "status": "available",
                            "subject": {"reference": "Patient/p1"},
                            "identifier": [
                                {"system": "urn:dicom:uid", "value": f"urn:oid:{study}"}
                            ],
                        }
                    }
                ],
            },
            "pathologyDocuments": None,
            "media": None,
        },
    }
    url = f"{served.url}/cds-services/histopathology-ai"
    jwt = sign_client_jwt(client_key, iss=EHR_ISS, aud=url)  # base URL: http://HOST:PORT
    answer = httpx.post(url, json=body, headers={"Authorization": f"Bearer {jwt}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    (card,) = answer.json()["cards"]
    assert card["indicator"] in {"info", "warning"}
    assert "3 image(s)" in card["summary"] or "of 3 image(s)" in card["summary"]
    assert "AI-generated; requires pathologist review" in card["detail"]


def test_a_dicomized_whole_slide_is_analysed_from_the_pacs(
    serve: Callable[..., Served],
    tmp_path: Path,
    sqlite_url: str,
    imaging_bundle: Path,
    client_key: SigningKey,
) -> None:
    """A 3-level pyramid (OrthancWSIDicomizer, 256 px JPEG tiles) of IHC tissue and the IDC
    patches: one whole-slide image analysed, its base level read tile by tile."""
    served, pacs_port, token = _start(serve, tmp_path, sqlite_url, imaging_bundle, client_key)
    env = {"ONCOCDS_NOTIFY_URL": served.url + NOTIFY, "ONCOCDS_NOTIFY_TOKEN": token}
    mosaic = np.full((768, 1024, 3), 236, dtype=np.uint8)
    mosaic[:512, :512] = f.ihc_image()
    mosaic[512:768, 512:1024] = f.ihc_image()[:256]
    mosaic[100:150, 700:750] = f.idc_patch(0)
    mosaic[100:150, 800:850] = f.idc_patch(1)
    with OrthancServer.start(
        tmp_path / "pacs", auth="bearer", lua_scripts=(LUA,), env=env, port=pacs_port
    ) as pacs:
        study, _ = pacs.upload_slide(mosaic, spacing_mm=0.00025)
        row, images = _wait_for_result(served.database_url, study)
    assert row.status == "done", row.error
    (image,) = images
    assert image.label.startswith("Whole-slide image")
    (classified,) = served.audit("imaging.classify")
    assert classified.details["study_uid"] == study
