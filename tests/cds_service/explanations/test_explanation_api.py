"""``GET /api/v1/analyses/{id}/explanation`` (issue 16): a clinician-facing read of an
analysis's explanation, labelled, as JSON or as the FHIR collection Bundle; 202 while it is
being written; audited. On SQLite and PostgreSQL.

The model answers come from the Ollama-API test server (``tests/support/ollama_server.py``)
scripted with crafted replies: a stand-in at the network edge (no Ollama binary can be
installed here).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds_service.analyses.service import store_analysis
from cds_service.explanations.service import Explainer, enqueue_for_analysis
from cds_service.models import AuditRecord, Explanation
from cds_service.security.signing import SigningKey
from cds_service.settings import Settings
from tests.cds_service.cdshooks.conftest import (
    ClientJwtAuth,
    client_entry,
    es_key,
    write_clients,
)
from tests.cds_service.explanations.test_explanations import (  # the module's fixtures
    GOOD,
    SECRET,
    TEMPLATE,
    _dispose_engine,
    _pending,
    _run,
    explainer,
    server,
)
from tests.genomics_examples import ISSUED, braf_crc_interpretation
from tests.support.ollama_server import OllamaTestServer, Reply

__all__ = ["_dispose_engine", "es_key", "explainer", "server", "write_clients"]

#: The DiagnosticReport id of the reviewed golden Bundle of this interpretation
#: (tests/data/fhir_golden/braf_v600e_crc.json).
REPORT = "DiagnosticReport/rep-504cf6d523e1ed8b917e3156"
FHIR = "application/fhir+json"


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    database_url: str,
    server: OllamaTestServer,
    write_clients: Callable[[list[dict[str, Any]]], Path],
    es_key: SigningKey,
) -> Settings:
    """The LLM on (the test server) and the CDS test client trusted, as for the analyses API.

    No in-process job executor: the tests run explanations themselves (``_run``), and a state
    such as "the card path's job alone" must not be ended by a worker racing the request (it
    ran the enqueued ``llm.explain`` job, template fallback included, before the GET under load).
    """
    return make_settings(
        database_url=database_url,
        reports={"secret": SECRET},
        clients_file=write_clients([client_entry([es_key])]),
        jobs={"in_process": False},
        llm={
            "enabled": True,
            "url": server.url,
            "model": server.model_name,
            "digest": server.digest,
            "read_timeout_s": 1.0,
        },
    )


@pytest.fixture
def client(app: FastAPI, es_key: SigningKey) -> Iterator[TestClient]:
    """Every request signed with the trusted client's key (aud = the URL called)."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.auth = ClientJwtAuth(es_key)
        yield test_client


def _analysis_of(app: FastAPI, row_id: str) -> str:
    with app.state.sessionmaker() as session:
        row = session.get(Explanation, row_id)
        assert row is not None
        return str(row.subject_id)


def test_pending_then_the_labelled_model_text_as_json_and_fhir(
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    server: OllamaTestServer,
    explainer: Explainer,
) -> None:
    row_id = _pending(app, settings)
    analysis_id = _analysis_of(app, row_id)
    path = f"/api/v1/analyses/{analysis_id}/explanation"
    pending = client.get(path)
    assert pending.status_code == 202
    assert pending.json() == {"analysisId": analysis_id, "status": "pending"}
    assert client.get(path, params={"format": "fhir"}).json()["resourceType"] == (
        "OperationOutcome"
    )

    server.script([Reply(json.dumps(GOOD))])
    _run(app, explainer, row_id)
    ready = client.get(path)
    assert ready.status_code == 200
    body = ready.json()
    assert body["label"] == f"Model-generated (gemma3:270m, {server.digest[:12]}); not verified"
    assert (body["status"], body["source"], body["explanation"]) == ("ready", "model", GOOD)
    assert body["modelDigest"] == server.digest

    for answer in (
        client.get(path, params={"format": "fhir"}),
        client.get(path, headers={"Accept": FHIR}),
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith(FHIR)
        bundle = answer.json()
        assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
        kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
        assert kinds == ["Device", "DocumentReference", "DocumentReference", "Provenance"]
        document = bundle["entry"][0]["resource"]
        assert document["description"] == body["label"]
        assert document["meta"]["security"][0]["code"] == "AIAST"
        assert document["context"]["related"] == [{"reference": REPORT}]
    # ?format wins over Accept.
    assert (
        "resourceType"
        not in client.get(path, params={"format": "json"}, headers={"Accept": FHIR}).json()
    )

    with app.state.sessionmaker() as session:
        records = session.scalars(
            select(AuditRecord).where(AuditRecord.event_type == "explanation.read")
        ).all()
    assert len(records) == 6
    assert {r.patient_id for r in records} == {"Patient/p1"}
    assert records[-1].entities == [
        {"type": "Analysis", "id": analysis_id},
        {"type": "Explanation", "id": row_id},
    ]
    assert [r.details["status"] for r in records] == ["pending"] * 2 + ["ready"] * 4


def test_a_template_carries_its_own_label_and_no_ai_security_label(
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    server: OllamaTestServer,
    explainer: Explainer,
) -> None:
    server.script(
        [
            Reply(
                json.dumps(
                    {"clinician_summary": "BRAF V600E: sotorasib.", "patient_paragraphs": []}
                )
            )
        ]
    )
    row_id = _pending(app, settings)
    _run(app, explainer, row_id)
    path = f"/api/v1/analyses/{_analysis_of(app, row_id)}/explanation"
    body = client.get(path).json()
    assert body["source"] == "template"
    assert body["explanation"] == TEMPLATE
    assert body["label"].startswith("Deterministic template built from the findings")
    bundle = client.get(path, params={"format": "fhir"}).json()
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["DocumentReference"]
    assert "meta" not in bundle["entry"][0]["resource"]


def test_the_card_paths_job_alone_is_pending_and_nothing_asked_is_404(
    app: FastAPI, client: TestClient
) -> None:
    with app.state.sessionmaker.begin() as session:
        queued = store_analysis(
            session, braf_crc_interpretation(), "Patient/q", "vcf", issued=ISSUED
        ).id
        enqueue_for_analysis(session, queued)
        bare = store_analysis(
            session, braf_crc_interpretation(), "Patient/b", "vcf", issued=ISSUED
        ).id
    assert client.get(f"/api/v1/analyses/{queued}/explanation").status_code == 202
    # The analyses API's credential: no client JWT, no answer.
    unsigned = client.get(f"/api/v1/analyses/{queued}/explanation", auth=None)
    assert unsigned.status_code == 401
    for analysis_id in (bare, str(uuid.uuid4()), "not-a-uuid"):
        answer = client.get(f"/api/v1/analyses/{analysis_id}/explanation")
        assert answer.status_code == 404
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert client.get(
        f"/api/v1/analyses/{bare}/explanation", params={"format": "xml"}
    ).status_code in (400, 422)
