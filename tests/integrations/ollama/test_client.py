"""The Ollama client wrapper through the real ``ollama`` client, over real HTTP, against the
Ollama-API test server (a stand-in at the network edge: no Ollama binary can be installed here;
it serves the real Gemma 3 270M model with the JSON Schema enforced as a grammar, or crafted
replies for the failure modes)."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict

from inference.llm import GenomicExplanation, genomic_input, load_prompt
from inference.llm.schemas import json_schema
from integrations.ollama import OllamaConfig, OllamaStructuredClient
from tests.genomics_examples import braf_crc_interpretation
from tests.support.ollama_server import OllamaTestServer, Reply

VALID = json.dumps(
    {
        "clinician_summary": "BRAF V600E (Tier I - Level A): sensitive to encorafenib.",
        "patient_paragraphs": [{"finding_id": "F1", "text": "A change was found."}],
    }
)


def _client(server: OllamaTestServer, **overrides: object) -> OllamaStructuredClient:
    values: dict[str, object] = {
        "url": server.url,
        "model": server.model_name,
        "digest": server.digest[:16],
        "num_predict": 600,
        "read_timeout_s": 60.0,
    }
    values.update(overrides)
    return OllamaStructuredClient(OllamaConfig(**values))  # type: ignore[arg-type]


def _generate(client: OllamaStructuredClient) -> object:
    source = genomic_input(braf_crc_interpretation())
    with client:
        return client.generate(
            load_prompt("genomic").text, source.text, GenomicExplanation, json_schema("genomic")
        )


def test_valid_answer_first_time(crafted_server: OllamaTestServer) -> None:
    crafted_server.script([Reply(VALID)])
    result = _generate(_client(crafted_server))
    assert result.value is not None
    assert result.failure is None
    assert result.retries == 0  # type: ignore[attr-defined]
    sent = crafted_server.requests[0]
    assert sent["format"] == json_schema("genomic")
    assert sent["options"] == {"num_ctx": 4096, "num_predict": 600, "temperature": 0.0, "seed": 16}
    assert sent["keep_alive"] == "30m"
    assert sent["stream"] is False


def test_prose_is_retried_once_with_the_error_then_given_up(
    crafted_server: OllamaTestServer,
) -> None:
    prose = "BRAF V600E is a common mutation. Treatment options include several drugs."
    crafted_server.script([Reply(prose), Reply(prose)])
    result = _generate(_client(crafted_server))
    assert result.value is None  # type: ignore[attr-defined]
    assert result.failure == "invalid"  # type: ignore[attr-defined]
    assert result.retries == 1  # type: ignore[attr-defined]
    assert len(crafted_server.requests) == 2
    retry = crafted_server.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": prose}
    assert "Invalid JSON" in retry[-1]["content"]


def test_truncated_answer_is_retried_and_the_second_answer_used(
    crafted_server: OllamaTestServer,
) -> None:
    crafted_server.script([Reply(VALID[:40], done_reason="length"), Reply(VALID)])
    result = _generate(_client(crafted_server))
    assert result.value is not None  # type: ignore[attr-defined]
    assert result.retries == 1  # type: ignore[attr-defined]
    assert [a.error for a in result.attempts] == ["truncated", None]  # type: ignore[attr-defined]
    assert "cut off" in crafted_server.requests[1]["messages"][-1]["content"]


def test_schema_violation_carries_the_validation_error(crafted_server: OllamaTestServer) -> None:
    wrong = json.dumps({"clinician_summary": "x" * 5000, "patient_paragraphs": []})
    crafted_server.script([Reply(wrong), Reply(VALID)])
    result = _generate(_client(crafted_server))
    assert result.value is not None  # type: ignore[attr-defined]
    assert "clinician_summary" in crafted_server.requests[1]["messages"][-1]["content"]


def test_hanging_server_hits_the_read_timeout(crafted_server: OllamaTestServer) -> None:
    crafted_server.hang()
    result = _generate(_client(crafted_server, read_timeout_s=1.0))
    assert result.value is None  # type: ignore[attr-defined]
    assert result.failure == "timeout"  # type: ignore[attr-defined]
    assert len(crafted_server.requests) == 1  # no retry after a timeout


def test_other_digest_is_refused_before_generating(crafted_server: OllamaTestServer) -> None:
    crafted_server.script([Reply(VALID)])
    result = _generate(_client(crafted_server, digest="0" * 64))
    assert result.failure == "digest mismatch"  # type: ignore[attr-defined]
    assert crafted_server.requests == []


def test_unreachable_server_is_unavailable() -> None:
    config = OllamaConfig(
        url="http://127.0.0.1:9", model="m", digest="0" * 16, connect_timeout_s=0.5
    )
    result = _generate(OllamaStructuredClient(config))
    assert result.failure == "unavailable"  # type: ignore[attr-defined]


def test_readiness_reports_model_digest_and_loaded(crafted_server: OllamaTestServer) -> None:
    with _client(crafted_server) as client:
        ok, details = client.readiness()
    assert ok
    assert details == {
        "model": "gemma3:270m",
        "digest": crafted_server.digest[:16],
        "installed": True,
        "digestMatches": True,
        "loaded": True,
    }
    crafted_server.loaded = False
    with _client(crafted_server) as client:
        assert client.readiness()[1]["loaded"] is False
    with _client(crafted_server, digest="f" * 64) as client:
        bad_ok, bad = client.readiness()
    assert not bad_ok
    assert bad["digestMatches"] is False


class Verdict(BaseModel):
    """A tiny answer the real 270M model can finish within a few tokens."""

    model_config = ConfigDict(extra="forbid")
    actionable: bool


def test_real_model_answers_schema_valid_json(model_server: OllamaTestServer) -> None:
    """Real generation, end to end: the server enforces the request's JSON Schema as a grammar,
    so the base model's (meaningless) answer parses, validates and stops by itself."""
    schema = Verdict.model_json_schema()
    with _client(model_server, num_predict=32, read_timeout_s=600.0) as client:
        result = client.generate("Answer in JSON.", "Is BRAF V600E actionable?", Verdict, schema)
    assert result.failure is None, result.attempts
    assert isinstance(result.value, Verdict)
    assert result.attempts[0].done_reason == "stop"
    assert result.eval_count > 0
    assert model_server.requests[-1]["format"] == schema


def test_real_model_cut_off_by_num_predict_is_retried_then_given_up(
    model_server: OllamaTestServer,
) -> None:
    """The service's own genomic schema with a tiny ``num_predict``: the real model's answer
    is grammar-shaped JSON cut off (``done_reason: length``), retried once with the reason, and
    given up as ``truncated`` (the explanation then falls back to the template)."""
    before = len(model_server.requests)
    result = _generate(_client(model_server, num_predict=24, read_timeout_s=600.0))
    assert result.value is None  # type: ignore[attr-defined]
    assert result.failure == "truncated"  # type: ignore[attr-defined]
    assert [a.done_reason for a in result.attempts] == ["length", "length"]  # type: ignore[attr-defined]
    first = result.raw[0]  # type: ignore[attr-defined]
    assert first.lstrip().startswith("{")
    assert '"clinician_summary"' in first  # the grammar's first property
    assert len(model_server.requests) == before + 2
    assert "cut off" in model_server.requests[-1]["messages"][-1]["content"]
