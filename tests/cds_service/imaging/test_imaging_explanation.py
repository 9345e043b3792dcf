"""Histopathology explanations (issue 16) wired to imaging results: with the LLM on, storing an
image's analysis also stores its pending explanation and ``llm.explain`` job in the same
transaction; the imaging report page and the genomic report page's imaging section show a
notice while it is pending, then the findings, interpretation and next steps under the
"Model-generated (model, digest); not verified" label. On SQLite and PostgreSQL.

The model answers come from the Ollama-API test server (``tests/support/ollama_server.py``)
with a crafted reply: a stand-in at the network edge (no Ollama binary can be installed here).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cds_service.imaging.report import imaging_report_link
from cds_service.models import Explanation
from cds_service.models.imaging import ImagingImage
from cds_service.models.jobs import BackgroundJob
from tests.cds_service.imaging.conftest import ImagingApp
from tests.cds_service.imaging.test_imaging_api import tissue_png, upload
from tests.support.ollama_server import OllamaTestServer, Reply

ANSWER: dict[str, Any] = {
    "findings": "The classifier looked at the tissue of this image.",
    "interpretation": "This is a screening aid and not a diagnosis.",
    "next_steps": ["Pathologist review of the slide."],
}


@pytest.fixture
def server() -> Iterator[OllamaTestServer]:
    with OllamaTestServer.start(model=False) as server:
        yield server


@pytest.fixture
def imaging(
    make_imaging_app: Callable[..., ImagingApp],
    database_url: str,
    imaging_bundle: Path,
    server: OllamaTestServer,
) -> ImagingApp:
    llm = {
        "enabled": True,
        "url": server.url,
        "model": server.model_name,
        "digest": server.digest,
        "read_timeout_s": 5.0,
    }
    return make_imaging_app(database_url, bundle=imaging_bundle, llm=llm)


def _page(imaging: ImagingApp, result_id: str) -> str:
    link = imaging_report_link(imaging.settings, result_id)
    answer = imaging.http.get(link.removeprefix(imaging.settings.base_url))
    assert answer.status_code == 200
    return str(answer.text)


def _genomic_page(imaging: ImagingApp, analysis_id: str) -> str:
    from cds_service.reports.tokens import report_secret, sign_report_token

    token = sign_report_token(report_secret(imaging.settings), analysis_id, ttl_seconds=600)
    answer = imaging.http.get(f"/reports/{analysis_id}?t={token}")
    assert answer.status_code == 200
    return str(answer.text)


def test_a_stored_image_is_explained_by_its_own_job_and_shown_labelled(
    imaging: ImagingApp, server: OllamaTestServer
) -> None:
    from cds_service.analyses.service import store_analysis
    from tests.genomics_examples import ISSUED, braf_crc_interpretation

    with imaging.app.state.sessionmaker.begin() as session:
        analysis_id = store_analysis(
            session, braf_crc_interpretation(), "Patient/p1", "vcf", issued=ISSUED
        ).id
    body = upload(imaging, tissue_png(), derivedFrom="DocumentReference/d1").json()
    result_id = body["results"][0]["id"]

    # One round: only the imaging job was due; it stored the image, the pending explanation
    # and the explanation's job together.
    assert [o.status for o in imaging.run_jobs(rounds=1)] == ["succeeded"]
    with imaging.app.state.sessionmaker() as session:
        (image,) = session.scalars(select(ImagingImage)).all()
        (row,) = session.scalars(select(Explanation)).all()
        jobs = session.scalars(select(BackgroundJob).order_by(BackgroundJob.id)).all()
    assert (row.subject_kind, row.subject_id) == ("image", f"imaging-image:{image.id}")
    assert (row.kind, row.status) == ("histopathology", "pending")
    assert [(j.kind, j.key, j.status) for j in jobs] == [
        ("imaging.analyse", jobs[0].key, "succeeded"),
        ("llm.explain", f"llm:{row.id}", "queued"),
    ]
    assert 'data-status="pending"' in _page(imaging, result_id)
    assert "An explanation is being prepared" in _page(imaging, result_id)
    assert server.requests == []  # nothing asked of the model on the imaging path

    server.script([Reply(json.dumps(ANSWER))])
    assert [o.status for o in imaging.run_jobs()] == ["succeeded"]
    label = f"Model-generated (gemma3:270m, {server.digest[:12]}); not verified"
    for page in (_page(imaging, result_id), _genomic_page(imaging, analysis_id)):
        assert 'id="imaging-explanation-1"' in page
        assert 'data-source="model"' in page
        assert label in page
        for text in (ANSWER["findings"], ANSWER["interpretation"], *ANSWER["next_steps"]):
            assert text in page
    assert len(server.requests) == 1
