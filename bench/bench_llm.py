"""Explanations (issue 16): latency, tokens/s, schema-valid and grounding-failure rates against
the Ollama-API test server running the real Gemma 3 270M (Q4_K_M GGUF, llama-cpp-python on this
machine's CPU), and the card latency with explanations switched on against off, in one run.

- **Cases**: 100 stored interpretations, fixed: the variants and genotypes of every clinical
  scenario in ``tests/data/cdshooks/scenarios`` and of the ``oncocds demo`` patient, each
  interpreted for its own tumour type and for four others (COADREAD, NSCLC, MEL, BRCA, none),
  sorted by name; the first 100 are stored as analyses (SQLite) and explained from the store.
- **Explanations**: each through :class:`cds_service.explanations.service.Explainer` as the job
  runs it (real ``ollama`` client, real HTTP, the JSON Schema enforced as a grammar, pydantic,
  one retry, grounding). Schema-valid after at most one retry = the model's answer validated;
  grounding failure = valid but not grounded (then the template is used).
- **Cards**: the real ``oncology-genomics`` service on the demo patient's patient-view call
  (a new patient id per call, so each call stores an analysis), in-process, LLM off against on
  (on: the call also stores the pending explanation and enqueues its job; no executor runs, as
  in a deployment whose worker is another process). Alternating, same run.

``BENCH_LLM_CASES=N`` explains only the first N cases (the card comparison is unchanged);
``BENCH_LLM_NUM_PREDICT`` sets ``num_predict`` (default 512, the service default);
``ONCOCDS_BENCH_LLM_CARDS_ONLY=1`` runs the card comparison only (the model is not loaded).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "data" / "cdshooks" / "scenarios"
TUMOURS = ("COADREAD", "NSCLC", "MEL", "BRCA", None)
CARD_CALLS = int(os.environ.get("BENCH_LLM_CARD_CALLS", "40"))


def _scenario_inputs() -> list[tuple[str, bytes, str | None]]:
    """(name, FHIR Bundle of its variants and genotypes, its tumour type code) per scenario."""
    out: list[tuple[str, bytes, str | None]] = []
    for request in sorted(SCENARIOS.glob("*/request.json")):
        body = json.loads(request.read_text())
        entries: list[dict[str, Any]] = []
        tumour: str | None = None
        for key, value in body.get("prefetch", {}).items():
            if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
                continue
            if key in ("variants", "genotypes"):
                entries += value.get("entry", [])
            if key == "conditions":
                for entry in value.get("entry", []):
                    coding = entry["resource"].get("code", {}).get("coding", [{}])[0]
                    if coding.get("system") and coding.get("code"):
                        tumour = f"{coding['system']}|{coding['code']}"
        if entries:
            bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
            out.append((request.parent.name, json.dumps(bundle).encode(), tumour))
    return out


def build_cases(limit: int = 100) -> list[tuple[str, Any]]:
    """The fixed benchmark interpretations, by name."""
    from inference.genomics import PatientContext, interpret, resolve_tumour_type
    from inference.genomics.model import Gene, Origin, Variant
    from integrations.readers import read_variants

    bases: list[tuple[str, list[Any], list[Any], str | None]] = []
    for name, data, tumour in _scenario_inputs():
        intake = read_variants(data, fmt="fhir", name=name)
        bases.append((name, list(intake.alterations), list(intake.genotypes), tumour))
    from cds_service.cli import demo_patient

    demo = [
        Variant(gene=Gene(g), protein_change=(p or "")[2:] or None, origin=Origin.SOMATIC)
        for g, _h, _c, _pos, _r, _a, _v, _d, p in demo_patient.VARIANTS
    ]
    bases.append(("demo-patient", demo, [], "COADREAD"))
    cases: list[tuple[str, Any]] = []
    for name, alterations, genotypes, own in bases:
        for code in (own, *TUMOURS):
            resolved = None
            if code:
                try:
                    resolved = resolve_tumour_type(code)
                except ValueError:
                    resolved = None
            label = f"{name}@{code or 'none'}"
            if any(existing == label for existing, _ in cases):
                continue
            context = PatientContext(tumour_type=resolved)
            cases.append((label, interpret(alterations, context, genotypes=genotypes)))
    cases.sort(key=lambda c: c[0])
    return cases[:limit]


def _pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _store(cases: list[tuple[str, Any]], settings: Any) -> tuple[Any, Any, list[str]]:
    """Store the cases as analyses with pending explanations; (engine, sessionmaker, ids)."""
    from cds_service.analyses.service import store_analysis
    from cds_service.db import migrate
    from cds_service.db.engine import make_engine
    from cds_service.db.session import make_sessionmaker
    from cds_service.explanations.service import request_for_analysis

    migrate.upgrade(settings.database_url, "head")
    engine = make_engine(settings.database_url, pool_size=2)
    factory = make_sessionmaker(engine)
    ids: list[str] = []
    with factory.begin() as session:
        for number, (_name, interpretation) in enumerate(cases):
            analysis = store_analysis(session, interpretation, f"Patient/bench-{number}", "vcf")
            ids.append(request_for_analysis(session, settings, analysis, enqueue_job=False).id)
    return engine, factory, ids


def explain_cases(cases: list[tuple[str, Any]], server: Any, num_predict: int) -> None:
    from cds_service.explanations.service import Explainer, ollama_config, run_explanation
    from cds_service.settings import Settings
    from integrations.ollama import OllamaStructuredClient

    tmp = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'bench.db'}",
        llm={
            "enabled": True,
            "url": server.url,
            "model": server.model_name,
            "digest": server.digest,
            "num_predict": num_predict,
            "read_timeout_s": 900.0,
        },
    )
    engine, factory, ids = _store(cases, settings)
    latencies: list[float] = []
    rates: list[float] = []
    counts = {"valid": 0, "grounding": 0, "fallback": 0, "retries": 0, "cached": 0}
    reasons: dict[str, int] = {}
    with OllamaStructuredClient(ollama_config(settings.llm)) as client:
        explainer = Explainer(client)
        for row_id in ids:
            started = time.perf_counter()
            row = run_explanation(factory, explainer, row_id)
            assert row is not None
            if row.cached:
                counts["cached"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            counts["retries"] += row.retries
            if row.eval_count and row.latency_ms:
                rates.append(row.eval_count / (row.latency_ms / 1000))
            counts["valid"] += row.source == "model" or row.grounding_failed
            counts["grounding"] += row.grounding_failed
            counts["fallback"] += row.fallback
            if row.fallback:
                reason = (row.fallback_reason or "")[:48]
                reasons[reason] = reasons.get(reason, 0) + 1
    engine.dispose()
    _report(
        server,
        num_predict=num_predict,
        cases=len(cases),
        latencies=latencies,
        rates=rates,
        counts=counts,
        reasons=reasons,
    )


def _report(
    server: Any,
    *,
    num_predict: int,
    cases: int,
    latencies: list[float],
    rates: list[float],
    counts: dict[str, int],
    reasons: dict[str, int],
) -> None:
    generated = len(latencies)
    print(
        f"model: {server.model_name} = Gemma 3 270M Q4_K_M GGUF (digest {server.digest[:12]}), "
        f"llama-cpp-python on CPU behind the Ollama-API test server; num_predict {num_predict}"
    )
    print(
        f"cases: {cases} stored interpretations; generated {generated}, cache hits "
        f"{counts['cached']} (identical findings)"
    )
    if not generated:
        return
    print(
        f"explanation latency: p50 {_pct(latencies, 50):.2f} s, p95 {_pct(latencies, 95):.2f} s "
        "(incl. at most one retry)"
    )
    if rates:
        print(f"tokens/s (generated tokens / request time): median {statistics.median(rates):.1f}")
    print(
        f"schema-valid after <=1 retry: {counts['valid']}/{generated} = "
        f"{counts['valid'] / generated:.0%} (retries {counts['retries']})"
    )
    print(
        f"grounding failures: {counts['grounding']}/{generated} = "
        f"{counts['grounding'] / generated:.0%}; template used: {counts['fallback']}/{generated}"
    )
    print(f"fallback reasons: {dict(sorted(reasons.items()))}")


def card_latency(server: Any) -> None:
    from fastapi.testclient import TestClient

    from cds_service.app import create_app
    from cds_service.cdshooks.services import BUILTIN_SERVICES
    from cds_service.db import migrate
    from cds_service.security.signing import generate_signing_key, sign_client_jwt
    from cds_service.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="bench-llm-cards-"))
    key = generate_signing_key("ES384", kid="bench-es384")
    iss = "https://bench-ehr.example.org"
    clients = tmp / "clients.json"
    entry = {"iss": iss, "jwks": {"keys": [key.as_dict(private=False)]}}
    clients.write_text(json.dumps({"clients": [entry]}))
    body = json.loads((SCENARIOS / "issue12-demo-patient-view" / "request.json").read_text())
    service = body.pop("_service")
    text = json.dumps(body)
    apps: dict[str, Any] = {}
    for mode in ("off", "on"):
        url = f"sqlite:///{tmp / (mode + '.db')}"
        migrate.upgrade(url, "head")
        llm = {
            "enabled": mode == "on",
            "url": server.url,
            "model": server.model_name,
            "digest": server.digest,
        }
        settings = Settings(
            database_url=url,
            public_base_url="http://testserver",
            clients_file=clients,
            llm=llm,
            jobs={"in_process": False},
        )
        apps[mode] = TestClient(create_app(settings, cds_services=BUILTIN_SERVICES))
        apps[mode].__enter__()
    path = f"/cds-services/{service}"
    times: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for number in range(CARD_CALLS + 4):
            for mode in ("off", "on") if number % 2 else ("on", "off"):
                patient = f"bench-{mode}-{number}-{uuid.uuid4().hex[:6]}"
                call = json.loads(text.replace("oncocds-demo-crc", patient))
                token = sign_client_jwt(key, iss=iss, aud="http://testserver" + path)
                started = time.perf_counter()
                answer = apps[mode].post(
                    path, json=call, headers={"Authorization": f"Bearer {token}"}
                )
                elapsed = time.perf_counter() - started
                assert answer.status_code == 200, answer.text
                assert answer.json()["cards"]
                if number >= 4:  # warm-up calls left out
                    times[mode].append(elapsed)
    finally:
        for client in apps.values():
            client.__exit__(None, None, None)
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    print(
        f"card latency (oncology-genomics patient-view, demo patient, new patient per call, "
        f"{CARD_CALLS} calls each): explanations off p50 {off * 1000:.1f} ms, on p50 "
        f"{on * 1000:.1f} ms: ratio {on / off:.3f} (target <= 1.05)"
    )


def main() -> None:
    from tests.support.ollama_server import OllamaTestServer

    num_predict = int(os.environ.get("BENCH_LLM_NUM_PREDICT", "512"))
    limit = int(os.environ.get("BENCH_LLM_CASES", "100"))
    cards_only = os.environ.get("ONCOCDS_BENCH_LLM_CARDS_ONLY") == "1"
    with OllamaTestServer.start(model=not cards_only) as server:
        card_latency(server)
        if not cards_only:
            explain_cases(build_cases(100)[:limit], server, num_predict)


if __name__ == "__main__":
    main()
