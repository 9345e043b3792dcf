"""``GET /api/v1/writeback``: write-back jobs, e.g. ``?status=failed`` for the ones to retry.

For integration and compliance staff: a bearer token from the site's OIDC provider with the
``integration.read`` permission (:mod:`cds_service.compliance.auth`); the audit agent is its
``sub``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from cds_service.api.deps import AuditDep, RemoteAddrDep, RequestIdDep
from cds_service.compliance.auth import IntegrationReadPrincipal
from cds_service.db.session import DbSession
from cds_service.writeback.schemas import WritebackJobList, WritebackJobOut
from cds_service.writeback.service import list_jobs

log = logging.getLogger(__name__)


# Rounds and the periodic sweep of due jobs run as background jobs (writeback/jobs.py).
router = APIRouter(prefix="/api/v1/writeback", tags=["writeback"])


@router.get(
    "",
    response_model=WritebackJobList,
    response_model_by_alias=True,
    responses={
        401: {"description": "Staff bearer token missing or invalid"},
        403: {"description": "The integration.read permission is required"},
    },
)
def list_writeback_jobs(
    *,
    principal: IntegrationReadPrincipal,
    session: DbSession,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
    status: Literal["pending", "done", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> WritebackJobList:
    """Jobs newest first; each names its analysis, attempts, last error and next attempt."""
    jobs = list_jobs(session, status, limit)
    audit.record(
        action="R",
        event_type="writeback.list",
        agent_who=principal.subject,
        details={"status": status, "count": len(jobs)},
        request_id=request_id,
        remote_addr=remote,
    )
    return WritebackJobList(jobs=[WritebackJobOut.of(j) for j in jobs])
