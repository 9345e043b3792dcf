"""The ``llm.explain`` job kind (queue ``llm``): fill one pending explanation.

The model call never raises for a model failure (the template replaces the text), so a job only
fails, and is retried, when the database does. The explainer (its HTTP client) is a per-process
worker resource, built on first use in a worker, never on a request path.
"""

from __future__ import annotations

from typing import Any

from cds_service.explanations.service import (
    JOB_KIND,
    Explainer,
    explainer_for,
    run_explanation,
)
from cds_service.jobs import JobContext, PermanentJobError, job_kind, worker_resource
from cds_service.settings import Settings

RESOURCE = "llm.explainer"


@worker_resource(RESOURCE)
def _explainer(settings: Settings) -> Explainer:
    return explainer_for(settings.llm)


@job_kind(JOB_KIND, queue="llm", max_attempts=3, time_limit_s=900)
def explain(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    explanation_id = payload.get("explanationId")
    if not isinstance(explanation_id, str) or len(explanation_id) > 36:
        raise PermanentJobError("payload has no explanation id")
    explainer: Explainer = ctx.resource(RESOURCE)
    row = run_explanation(ctx.session_factory, explainer, explanation_id)
    if row is None:
        raise PermanentJobError("explanation not found")
    return {"source": row.source, "cached": row.cached}
