"""``oncocds explain ANALYSIS_ID`` and ``oncocds llm stats``.

``explain`` writes the plain-language explanation of a stored analysis now, in this process (the
API does it as an ``llm.explain`` job): the model's text when it is schema-valid and grounded in
the findings, else the deterministic template, and prints it with its label. A ready explanation
of the same findings, prompt version and model digest is reused. ``llm stats`` prints the
counters. Both are audited (identifiers and counts only). Handlers import what they use.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cds_service.cli.common import operator_id as _operator


def register(sub: Any) -> None:
    explain = sub.add_parser(
        "explain", help="plain-language explanation of a stored analysis (local LLM or template)"
    )
    explain.add_argument("analysis_id", help="the analysis id (a UUID)")
    explain.add_argument("--format", dest="output", choices=["text", "json"], default="text")
    explain.set_defaults(func=_explain)
    llm = sub.add_parser("llm", help="the local language model's explanations")
    llm_sub = llm.add_subparsers(dest="llm_command", required=True)
    stats = llm_sub.add_parser("stats", help="generations, retries, grounding failures, latency")
    stats.add_argument("--format", dest="output", choices=["text", "json"], default="text")
    stats.set_defaults(func=_stats)


def render_text(explanation: dict[str, Any], label: str) -> str:
    """An explanation (the schema's dict) as text, label first."""
    lines = [f"[{label}]", ""]
    if "clinician_summary" in explanation:
        lines += ["Clinician summary:", explanation["clinician_summary"], ""]
        for paragraph in explanation.get("patient_paragraphs", ()):
            lines += [f"For the patient ({paragraph['finding_id']}):", paragraph["text"], ""]
    else:
        lines += ["Findings:", explanation["findings"], ""]
        lines += ["Interpretation:", explanation["interpretation"], ""]
        lines += ["Next steps:", *(f"- {s}" for s in explanation["next_steps"]), ""]
    return "\n".join(lines)


def _explain(args: argparse.Namespace) -> int:
    import uuid

    from cds_service.analyses.service import get_analysis_or_404
    from cds_service.audit import AuditTrail
    from cds_service.db.engine import make_engine
    from cds_service.db.session import make_sessionmaker
    from cds_service.errors import BadRequestError
    from cds_service.explanations.service import (
        explainer_for,
        explanation_json,
        label,
        request_for_analysis,
        run_explanation,
    )
    from cds_service.settings import Settings

    try:
        analysis_id = str(uuid.UUID(args.analysis_id))
    except ValueError as exc:
        raise BadRequestError("ANALYSIS_ID must be an analysis id (a UUID)") from exc
    settings = Settings()
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        factory = make_sessionmaker(engine)
        with factory.begin() as session:
            analysis = get_analysis_or_404(session, analysis_id)
            patient_ref = analysis.patient_ref
            row_id = request_for_analysis(session, settings, analysis, enqueue_job=False).id
        with explainer_for(settings.llm) as explainer:
            row = run_explanation(factory, explainer, row_id)
        assert row is not None
        AuditTrail(engine, source_observer=settings.instance_id).record(
            action="R",
            event_type="llm.explain",
            agent_who=_operator(),
            agent_type="user",
            patient_id=patient_ref,
            entities=[{"type": "Analysis", "id": analysis_id}],
            details={"source": row.source, "cached": row.cached},
        )
    finally:
        engine.dispose()
    if args.output == "json":
        json.dump(explanation_json(row), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(row.content or {}, label(row)))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from cds_service.audit import AuditTrail
    from cds_service.db.engine import make_engine
    from cds_service.db.session import make_sessionmaker
    from cds_service.explanations.service import llm_stats
    from cds_service.settings import Settings

    settings = Settings()
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session:
            stats = llm_stats(session, settings)
        AuditTrail(engine, source_observer=settings.instance_id).record(
            action="R",
            event_type="llm.stats",
            agent_who=_operator(),
            agent_type="user",
            details={"explanations": stats["explanations"]},
        )
    finally:
        engine.dispose()
    if args.output == "json":
        json.dump(stats, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    latency = stats["latencyMs"]
    lines = [
        f"model:              {stats['model']} ({stats['digest'] or 'no digest'})"
        + ("" if stats["enabled"] else " [LLM switched off: templates only]"),
        f"explanations:       {stats['explanations']} ({stats['ready']} ready)",
        f"generations:        {stats['generations']} (retries {stats['retries']})",
        f"model texts used:   {stats['modelTexts']}",
        f"grounding failures: {stats['groundingFailures']}",
        f"fallbacks:          {stats['fallbacks']} (template used)",
        f"cache hits:         {stats['cacheHits']}",
        f"tokens generated:   {stats['tokensGenerated']}",
        f"latency:            p50 {latency['p50']} ms, p95 {latency['p95']} ms "
        f"(over {latency['n']})",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
