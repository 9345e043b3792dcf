"""``oncocds explain ANALYSIS_ID``, ``oncocds llm stats`` and ``oncocds analyze --explain``.

With the LLM on, the model server is the Ollama-API test server (``tests/support/
ollama_server.py``: a stand-in at the network edge, no Ollama binary is installable here)
answering a crafted reply; the CLI reaches it with the real ``ollama`` client over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cds_service.analyses.service import store_analysis
from cds_service.cli import main
from cds_service.db.engine import make_engine
from cds_service.db.session import make_sessionmaker
from cds_service.models import AuditRecord
from tests.genomics_examples import ISSUED, braf_crc_interpretation
from tests.support.ollama_server import OllamaTestServer, Reply

GOOD = {
    "clinician_summary": "BRAF V600E (Tier I - Level A): sensitive to encorafenib + cetuximab.",
    "patient_paragraphs": [{"finding_id": "F1", "text": "A change called BRAF V600E was found."}],
}


@pytest.fixture
def server() -> Iterator[OllamaTestServer]:
    with OllamaTestServer.start(model=False) as running:
        yield running


@pytest.fixture
def stored(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ONCOCDS_DATABASE_URL", database_url)
    engine = make_engine(database_url, pool_size=1)
    try:
        with make_sessionmaker(engine).begin() as session:
            return store_analysis(
                session, braf_crc_interpretation(), "Patient/p1", "vcf", issued=ISSUED
            ).id
    finally:
        engine.dispose()


def test_explain_with_the_model_prints_the_labelled_text_and_is_audited(
    stored: str,
    database_url: str,
    server: OllamaTestServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ONCOCDS_LLM__ENABLED", "true")
    monkeypatch.setenv("ONCOCDS_LLM__URL", server.url)
    monkeypatch.setenv("ONCOCDS_LLM__MODEL", server.model_name)
    monkeypatch.setenv("ONCOCDS_LLM__DIGEST", server.digest)
    server.script([Reply(json.dumps(GOOD))])
    assert main(["explain", stored]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"[Model-generated (gemma3:270m, {server.digest[:12]}); not verified]")
    assert "A change called BRAF V600E was found." in out
    # Again: the ready explanation is reused, nothing is generated.
    assert main(["explain", stored, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["source"] == "model"
    assert document["explanation"] == GOOD
    assert len(server.requests) == 1
    assert main(["llm", "stats", "--format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["explanations"], stats["generations"], stats["modelTexts"]) == (1, 1, 1)
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            events = conn.execute(
                select(AuditRecord.event_type, AuditRecord.patient_id).where(
                    AuditRecord.event_type.in_(("llm.explain", "llm.stats"))
                )
            ).all()
    finally:
        engine.dispose()
    assert sorted(events) == [
        ("llm.explain", "Patient/p1"),
        ("llm.explain", "Patient/p1"),
        ("llm.stats", None),
    ]


def test_explain_with_the_llm_off_prints_the_template(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", stored]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "[Deterministic template built from the findings (no model text used: LLM switched off)]"
    )
    assert "BRAF V600E (Tier I - Level A): sensitive to encorafenib + cetuximab" in out


def test_explain_refuses_a_bad_or_unknown_id(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "not-a-uuid"]) == 2
    assert capsys.readouterr().err == (
        "oncocds: error: ANALYSIS_ID must be an analysis id (a UUID)\n"
    )
    assert main(["explain", "00000000-0000-0000-0000-000000000000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("oncocds: error: ")
    assert err.count("\n") == 1


def test_analyze_explain_adds_the_labelled_explanation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variants = tmp_path / "variants.txt"
    variants.write_text("BRAF V600E\n")
    assert main(["analyze", str(variants), "--tumor-type", "COAD", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "\nExplanation\n[Deterministic template built from the findings" in out
    assert (
        main(["analyze", str(variants), "--tumor-type", "COAD", "--explain", "--format", "json"])
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["explanation"]["source"] == "template"
    assert document["explanation"]["text"]["patient_paragraphs"][0]["finding_id"] == "F1"
    assert main(["analyze", str(variants), "--explain", "--format", "fhir"]) == 2
    assert capsys.readouterr().err == (
        "oncocds: error: --explain works with --format text or json\n"
    )
