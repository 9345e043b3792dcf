"""Explanations end to end in the service: crafted model outputs and a hanging server each end
in the template text; a grounded answer is used and labelled; the cache; the counters; the
report page; the FHIR resources. On SQLite and PostgreSQL.

The model server is the Ollama-API test server (``tests/support/ollama_server.py``): a stand-in
at the network edge (no Ollama binary can be installed here), here answering crafted replies;
the service talks to it with the real ``ollama`` client over real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds_service.analyses.service import store_analysis
from cds_service.explanations.fhir import explanation_bundle
from cds_service.explanations.service import (
    Explainer,
    label,
    llm_stats,
    ollama_config,
    request_for_analysis,
    run_explanation,
    stored_input,
)
from cds_service.models import AuditRecord, Explanation
from cds_service.reports.tokens import report_link
from cds_service.settings import Settings
from inference.genomics.model import Interpretation
from inference.llm import genomic_input, template_explanation
from integrations.ollama import OllamaStructuredClient
from tests.genomics_examples import ISSUED, braf_crc_interpretation
from tests.support.ollama_server import OllamaTestServer, Reply

SECRET = "test-report-secret-0123456789abcdef"
GOOD = {
    "clinician_summary": "BRAF V600E (Tier I - Level A): sensitive to encorafenib + cetuximab.",
    "patient_paragraphs": [{"finding_id": "F1", "text": "A change called BRAF V600E was found."}],
}


def _answer(summary: str, paragraph: str = "A change was found.") -> str:
    return json.dumps(
        {
            "clinician_summary": summary,
            "patient_paragraphs": [{"finding_id": "F1", "text": paragraph}],
        }
    )


@pytest.fixture
def server() -> Iterator[OllamaTestServer]:
    with OllamaTestServer.start(model=False) as running:
        yield running


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], database_url: str, server: OllamaTestServer
) -> Settings:
    return make_settings(
        database_url=database_url,
        reports={"secret": SECRET},
        llm={
            "enabled": True,
            "url": server.url,
            "model": server.model_name,
            "digest": server.digest,
            "read_timeout_s": 1.0,
        },
    )


@pytest.fixture(autouse=True)
def _dispose_engine(app: FastAPI) -> Iterator[None]:
    yield
    app.state.engine.dispose()  # tests that use no TestClient never run the app's lifespan


@pytest.fixture
def explainer(settings: Settings) -> Iterator[Explainer]:
    with OllamaStructuredClient(ollama_config(settings.llm)) as client:
        yield Explainer(client)


def _pending(app: FastAPI, settings: Settings, patient: str = "Patient/p1") -> str:
    with app.state.sessionmaker.begin() as session:
        analysis = store_analysis(session, braf_crc_interpretation(), patient, "vcf", issued=ISSUED)
        return request_for_analysis(session, settings, analysis, enqueue_job=False).id


def _run(app: FastAPI, explainer: Explainer, row_id: str) -> Explanation:
    row = run_explanation(app.state.sessionmaker, explainer, row_id)
    assert row is not None
    return row


TEMPLATE = template_explanation(genomic_input(braf_crc_interpretation())).model_dump()

CRAFTED: dict[str, tuple[list[Reply], bool, str]] = {
    # name: (replies, grounding failure?, what the fallback reason names)
    "hallucinated drug": (
        [Reply(_answer("BRAF V600E: consider sotorasib (Tier I - Level A)."))],
        True,
        "drug not in the findings: sotorasib",
    ),
    "invented gene": (
        [Reply(_answer("BRAF V600E with a co-occurring KRAS G12D."))],
        True,
        "gene not in the findings: KRAS",
    ),
    "wrong tier": (
        [Reply(_answer("BRAF V600E is a Tier III finding."))],
        True,
        "tier not in the findings: III",
    ),
    "number not in findings": (
        [Reply(_answer("Encorafenib + cetuximab gave a 26% response rate."))],
        True,
        "number not in the findings: 26",
    ),
    "truncated JSON": (
        [Reply(json.dumps(GOOD)[:60], "length"), Reply(json.dumps(GOOD)[:60], "length")],
        False,
        "truncated",
    ),
    "prose": (
        [Reply("BRAF V600E is actionable."), Reply("Sure! Here is the explanation: ...")],
        False,
        "invalid",
    ),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_failure_ends_in_the_template(
    case: str, app: FastAPI, settings: Settings, server: OllamaTestServer, explainer: Explainer
) -> None:
    replies, grounding_failed, reason = CRAFTED[case]
    server.script(replies)
    row = _run(app, explainer, _pending(app, settings))
    assert row.status == "ready"
    assert row.source == "template"
    assert row.content == TEMPLATE
    assert row.fallback
    assert row.grounding_failed is grounding_failed
    assert reason in (row.fallback_reason or "")
    assert row.generations == len(replies)
    assert label(row).startswith("Deterministic template built from the findings")


def test_hanging_server_ends_in_the_template(
    app: FastAPI, settings: Settings, server: OllamaTestServer, explainer: Explainer
) -> None:
    server.hang()
    row = _run(app, explainer, _pending(app, settings))
    assert row.source == "template"
    assert row.content == TEMPLATE
    assert row.fallback_reason == "model answer not used: timeout"


def test_grounded_answer_is_used_labelled_and_cached(
    app: FastAPI, settings: Settings, server: OllamaTestServer, explainer: Explainer
) -> None:
    server.script([Reply(json.dumps(GOOD), eval_count=42)])
    row = _run(app, explainer, _pending(app, settings))
    assert row.source == "model"
    assert row.content == GOOD
    assert not row.fallback
    assert (row.generations, row.retries, row.eval_count) == (1, 0, 42)
    assert label(row) == f"Model-generated (gemma3:270m, {server.digest[:12]}); not verified"
    # The same findings for another patient: the cache key matches, nothing is generated.
    again = _run(app, explainer, _pending(app, settings, patient="Patient/p2"))
    assert again.cached
    assert again.content == GOOD
    assert again.generations == 0
    assert len(server.requests) == 1
    with app.state.sessionmaker() as session:
        stats = llm_stats(session, settings)
    assert stats["explanations"] == 2
    assert stats["generations"] == 1
    assert stats["cacheHits"] == 1
    assert stats["modelTexts"] == 2
    assert stats["fallbacks"] == 0
    assert stats["tokensGenerated"] == 42
    assert stats["latencyMs"]["n"] == 1


def test_stats_count_retries_grounding_failures_and_fallbacks(
    app: FastAPI, settings: Settings, server: OllamaTestServer, explainer: Explainer
) -> None:
    server.script(
        [
            Reply("prose"),  # first explanation: prose, then a valid grounded answer
            Reply(json.dumps(GOOD)),
            Reply(_answer("BRAF V600E: sotorasib.")),  # second: grounding failure
        ]
    )
    _run(app, explainer, _pending(app, settings))
    with app.state.sessionmaker.begin() as session:
        other = store_analysis(
            session,
            Interpretation(alterations=(), genotypes=(), context=braf_crc_interpretation().context),
            "Patient/p3",
            "vcf",
            issued=ISSUED,
        )
        other_id = request_for_analysis(session, settings, other, enqueue_job=False).id
    server.script([Reply(_answer("Nothing actionable; consider sotorasib.", "x"))])
    _run(app, explainer, other_id)
    with app.state.sessionmaker() as session:
        stats = llm_stats(session, settings)
    assert stats["generations"] == 3
    assert stats["retries"] == 1
    assert stats["groundingFailures"] == 1
    assert stats["fallbacks"] == 1
    assert stats["modelTexts"] == 1


def test_report_page_shows_the_labelled_explanation(
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    server: OllamaTestServer,
    explainer: Explainer,
) -> None:
    row_id = _pending(app, settings)
    with app.state.sessionmaker() as session:
        analysis_id = session.get(Explanation, row_id).subject_id  # type: ignore[union-attr]
    link = report_link(settings, analysis_id)
    pending = client.get(link.removeprefix(settings.base_url))
    assert 'id="explanation-pending"' in pending.text
    server.script([Reply(json.dumps(GOOD))])
    _run(app, explainer, row_id)
    page = client.get(link.removeprefix(settings.base_url)).text
    assert f"Model-generated (gemma3:270m, {server.digest[:12]}); not verified" in page
    assert "A change called BRAF V600E was found." in page
    assert 'data-source="model"' in page


def test_fhir_bundle_follows_the_ai_transparency_shapes(
    app: FastAPI, settings: Settings, server: OllamaTestServer, explainer: Explainer
) -> None:
    server.script([Reply(json.dumps(GOOD))])
    row = _run(app, explainer, _pending(app, settings))
    bundle = explanation_bundle(
        row,
        stored_input(row),
        label=label(row),
        report_reference="DiagnosticReport/r1",
        issued=ISSUED,
    )
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    explanation, prompt = by_type["DocumentReference"]
    assert explanation["meta"]["security"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "AIAST",
            "display": "Artificial Intelligence asserted",
        }
    ]
    assert prompt["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/aitransparency/StructureDefinition/AI-InputPrompt"
    ]
    assert prompt["type"]["coding"][0]["code"] == "AIInputPrompt"
    assert prompt["type"]["coding"][0]["system"] == (
        "http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIinputsCS"
    )
    (device,) = by_type["Device"]
    assert device["type"]["coding"][0]["code"] == "Artificial-Intelligence"
    assert device["deviceName"] == [{"name": "gemma3:270m", "type": "model-name"}]
    (provenance,) = by_type["Provenance"]
    assert provenance["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/aitransparency/StructureDefinition/AI-Provenance"
    ]
    assert provenance["reason"][0]["coding"][0]["code"] == "AIAST"
    assert provenance["target"] == [{"reference": f"DocumentReference/{explanation['id']}"}]
    assert provenance["agent"][0]["who"] == {"reference": f"Device/{device['id']}"}
    assert provenance["agent"][0]["role"][0]["coding"][0]["code"] == "Artificial-Intelligence"
    assert provenance["entity"] == [
        {"role": "derivation", "what": {"reference": f"DocumentReference/{prompt['id']}"}}
    ]
    # A template is not AI-asserted: no security label, device or provenance.
    template_row = _run(app, explainer, _pending(app, settings, patient="Patient/p9"))
    assert template_row.cached  # same findings: the cached model text, not a template
    with app.state.sessionmaker.begin() as session:
        stored = session.scalars(select(Explanation).where(Explanation.id == template_row.id)).one()
        stored.source, stored.content = "template", TEMPLATE
    template_bundle = explanation_bundle(
        stored,
        stored_input(stored),
        label=label(stored),
        report_reference="DiagnosticReport/r1",
        issued=ISSUED,
    )
    assert [e["resource"]["resourceType"] for e in template_bundle["entry"]] == [
        "DocumentReference"
    ]
    assert "meta" not in template_bundle["entry"][0]["resource"]


def test_stats_route_is_staff_only_and_audited(
    app: FastAPI, client: TestClient, settings: Settings
) -> None:
    from cds_service.compliance.devtoken import mint_dev_token

    token = mint_dev_token(settings, role="integration")
    answer = client.get("/api/v1/llm/stats", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.json()["explanations"] == 0
    assert answer.json()["model"] == "gemma3:270m"
    assert client.get("/api/v1/llm/stats").status_code == 401
    with app.state.sessionmaker() as session:
        events = session.scalars(
            select(AuditRecord.event_type).where(AuditRecord.event_type == "llm.stats")
        ).all()
    assert events == ["llm.stats"]


def test_readyz_reports_the_model_when_enabled(
    client: TestClient, settings: Settings, server: OllamaTestServer
) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["llm"] == {
        "status": "ok",
        "model": "gemma3:270m",
        "digest": server.digest,
        "installed": True,
        "digestMatches": True,
        "loaded": True,
    }
    server.loaded = False
    assert client.get("/readyz").json()["checks"]["llm"]["loaded"] is False


def test_readyz_has_no_llm_check_when_disabled(
    make_settings: Callable[..., Settings], sqlite_url: str
) -> None:
    from cds_service.app import create_app

    with TestClient(create_app(make_settings(database_url=sqlite_url))) as plain:
        assert "llm" not in plain.get("/readyz").json()["checks"]
