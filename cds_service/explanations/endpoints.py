"""``GET /api/v1/llm/stats``: explanation counters (generations, retries, grounding failures,
fallbacks, cache hits, latency p50/p95) for integration and compliance staff.

A bearer token from the site's OIDC provider with ``integration.read``; every call (and every
refusal, by the dependency) is audited. The answer holds counts only, no clinical content.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI

from cds_service.api.deps import AuditDep, RemoteAddrDep, RequestIdDep, SettingsDep
from cds_service.compliance.auth import IntegrationReadPrincipal
from cds_service.db.session import DbSession
from cds_service.explanations.service import explainer_for, llm_stats


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
    audit: AuditDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
) -> dict[str, Any]:
    """Counters over every stored explanation, and the model they are generated with."""
    stats = llm_stats(session, settings)
    audit.record(
        action="R",
        event_type="llm.stats",
        agent_who=principal.subject,
        details={"explanations": stats["explanations"]},
        request_id=request_id,
        remote_addr=remote,
    )
    return stats
