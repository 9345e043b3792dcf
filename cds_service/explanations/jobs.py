"""The ``llm.explain`` job kind (queue ``llm``): fill one pending explanation.

The model call never raises for a model failure (the template replaces the text), so a job only
fails, and is retried, when the database does. The explainer (its HTTP client) is a per-process
worker resource, built on first use in a worker, never on a request path.
"""

from __future__ import annotations

from typing import Any

from cds_service.analyses import repository as analyses_repository
from cds_service.explanations.service import (
    JOB_KIND,
    Explainer,
    explainer_for,
    request_for_analysis,
    run_explanation,
)
from cds_service.jobs import JobContext, PermanentJobError, job_kind, worker_resource
from cds_service.settings import Settings

RESOURCE = "llm.explainer"


@worker_resource(RESOURCE)
def _explainer(settings: Settings) -> Explainer:
    return explainer_for(settings.llm)


def _row_for_analysis(ctx: JobContext, analysis_id: str) -> str:
    """The pending explanation of a stored analysis (created here when the card path only
    enqueued the job)."""
    with ctx.session_factory.begin() as session:
        analysis = analyses_repository.get_analysis(session, analysis_id)
        if analysis is None:
            raise PermanentJobError("analysis not found")
        return request_for_analysis(session, ctx.settings, analysis, enqueue_job=False).id


@job_kind(JOB_KIND, queue="llm", max_attempts=3, time_limit_s=900)
def explain(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Payload ``{"explanationId": …}`` (a pending row) or ``{"analysisId": …}``."""
    analysis_id = payload.get("analysisId")
    if isinstance(analysis_id, str) and len(analysis_id) <= 36:
        explanation_id: object = _row_for_analysis(ctx, analysis_id)
    else:
        explanation_id = payload.get("explanationId")
    if not isinstance(explanation_id, str) or len(explanation_id) > 36:
        raise PermanentJobError("payload has no explanation or analysis id")
    explainer: Explainer = ctx.resource(RESOURCE)
    row = run_explanation(ctx.session_factory, explainer, explanation_id)
    if row is None:
        raise PermanentJobError("explanation not found")
    return {"source": row.source, "cached": row.cached}
