"""``GET /api/v1/llm/stats``: explanation counters (generations, retries, grounding failures,
fallbacks, cache hits, latency p50/p95) for integration and compliance staff.
``GET /api/v1/analyses/{id}/explanation``: one analysis's labelled explanation for clinical
API clients (the analyses API's client JWT; audit agent = its ``iss``), JSON or FHIR.

A bearer token from the site's OIDC provider with ``integration.read``; every call (and every
refusal, by the dependency) is audited. The answer holds counts only, no clinical content.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Header, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from cds_service.analyses.service import get_analysis_or_404
from cds_service.api.deps import RequestAuditDep, SettingsDep
from cds_service.api.errors import FHIR_JSON
from cds_service.api.responses import NO_SUCH_ANALYSIS, client_responses
from cds_service.audit.service import AuditEntity
from cds_service.compliance.auth import IntegrationReadPrincipal
from cds_service.db.session import DbSession
from cds_service.errors import NotFoundError
from cds_service.explanations.fhir import explanation_bundle
from cds_service.explanations.service import (
    explainer_for,
    explanation_json,
    label,
    latest_for,
    llm_stats,
    stored_input,
)
from cds_service.models.jobs import BackgroundJob
from cds_service.security.deps import ClientCaller
from integrations.fhir.outcome import operation_outcome


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """When the LLM is on, ``/readyz`` reports it: model, pinned digest, installed, loaded."""
    settings = app.state.settings.llm
    if not settings.enabled:
        yield
        return
    with explainer_for(settings) as explainer:
        assert explainer.client is not None
        app.state.readiness_probes["llm"] = explainer.client.readiness
        yield


router = APIRouter(prefix="/api/v1/llm", tags=["explanations"], lifespan=lifespan)


@router.get(
    "/stats",
    responses={
        401: {"description": "Staff bearer token missing or invalid"},
        403: {"description": "The integration.read permission is required"},
    },
)
def explanation_stats(
    *,
    principal: IntegrationReadPrincipal,
    session: DbSession,
    settings: SettingsDep,
    audit: RequestAuditDep,
) -> dict[str, Any]:
    """Counters over every stored explanation, and the model they are generated with."""
    stats = llm_stats(session, settings)
    audit.record(
        action="R",
        event_type="llm.stats",
        agent_who=principal.subject,
        details={"explanations": stats["explanations"]},
    )
    return stats


# --- the analysis explanation route

#: Clinical API clients read an analysis's explanation with the analyses API's credential.
analysis_router = APIRouter(prefix="/api/v1/analyses", tags=["explanations"])


def _report_reference(bundle: dict[str, Any]) -> str:
    """``DiagnosticReport/<id>`` of the analysis's stored report Bundle."""
    for entry in bundle.get("entry", ()):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == "DiagnosticReport" and resource.get("id"):
            return f"DiagnosticReport/{resource['id']}"
    return str(bundle.get("id", ""))


def jobs_repository_has_key(session: Session, key: str) -> bool:
    """Whether a job with this key exists (the card path enqueues the job before any row)."""
    stmt = select(BackgroundJob.id).where(BackgroundJob.key == key).limit(1)
    return session.scalars(stmt).first() is not None


def _wants_fhir(fmt: str | None, accept: str | None) -> bool:
    if fmt is not None:
        return fmt == "fhir"
    return FHIR_JSON in (accept or "")


@analysis_router.get(
    "/{analysis_id}/explanation",
    response_class=JSONResponse,
    responses=client_responses(
        {202: "The explanation is being written (a job is queued or running)"},
        {404: f"{NO_SUCH_ANALYSIS}, or no explanation asked for"},
    ),
)
def read_analysis_explanation(
    analysis_id: str,
    *,
    caller: ClientCaller,
    session: DbSession,
    audit: RequestAuditDep,
    fmt: Annotated[Literal["json", "fhir"] | None, Query(alias="format")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """The analysis's plain-language explanation (issue 16), labelled: "Model-generated (model,
    digest); not verified", or the deterministic template with its label. 202 while it is being
    written. ``?format=fhir`` (or ``Accept: application/fhir+json``): the collection Bundle
    (DocumentReference; when model-written, AIAST security label, the prompt and the AIProvenance).
    """
    analysis = get_analysis_or_404(session, analysis_id)
    row = latest_for(session, "analysis", analysis.id)
    queued = row is None and jobs_repository_has_key(session, f"llm:analysis:{analysis.id}")
    status = row.status if row is not None else ("pending" if queued else "none")
    entities: list[AuditEntity] = [{"type": "Analysis", "id": analysis.id}]
    if row is not None:
        entities.append({"type": "Explanation", "id": row.id})
    fhir = _wants_fhir(fmt, accept)
    audit.record(
        action="R",
        event_type="explanation.read",
        agent_who=caller.iss,
        patient_id=analysis.patient_ref,
        entities=entities,
        details={"status": status, "format": "fhir" if fhir else "json"},
    )
    if status == "none":
        raise NotFoundError("no explanation was asked for this analysis")
    if row is None or row.status != "ready":
        body: dict[str, Any] = {"analysisId": analysis.id, "status": "pending"}
        if fhir:
            body = operation_outcome(
                "the explanation is being written", code="informational", severity="information"
            )
        return JSONResponse(body, status_code=202, media_type=FHIR_JSON if fhir else None)
    if fhir:
        bundle = explanation_bundle(
            row,
            stored_input(row),
            label=label(row),
            report_reference=_report_reference(analysis.report_bundle),
            issued=row.completed or row.created,
        )
        return JSONResponse(bundle, media_type=FHIR_JSON)
    return JSONResponse({"analysisId": analysis.id, **explanation_json(row)})
