"""``/api/v1/jobs``: the job list, one job, and replay, for integration staff.

Staff bearer tokens from the site's OIDC provider (:mod:`cds_service.compliance.auth`), as for
the HL7 inbox: reading needs ``integration.read`` (integration and compliance staff), replaying
``integration.replay`` (integration staff only). Every call is audited (``jobs.*``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from cds_service.api.deps import AuditDep, RemoteAddrDep, RequestIdDep
from cds_service.compliance.auth import IntegrationReadPrincipal, IntegrationReplayPrincipal
from cds_service.jobs import operators
from cds_service.jobs.schemas import JobList, JobMetadata

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

Status = Literal["queued", "running", "succeeded", "failed", "dead"]
JobId = Annotated[int, Path(ge=1, le=2**63 - 1)]

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "Staff bearer token missing or invalid"},
    403: {"description": "The token lacks the required permission"},
}


@router.get("", summary="List background jobs, newest first", responses=_AUTH)
def list_jobs(
    request: Request,
    *,
    principal: IntegrationReadPrincipal,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote_addr: RemoteAddrDep,
    status: Annotated[Status | None, Query()] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[int | None, Query(alias="beforeId", ge=1, le=2**63 - 1)] = None,
) -> JobList:
    rows = operators.list_jobs(
        request.app.state.sessionmaker,
        audit,
        agent_who=principal.subject,
        status=status,
        kind=kind,
        limit=limit,
        before_id=before_id,
        request_id=request_id,
        remote_addr=remote_addr,
    )
    items = [JobMetadata.model_validate(operators.job_metadata(row)) for row in rows]
    return JobList(items=items, next_before_id=items[-1].id if len(items) == limit else None)


@router.get("/{job_id}", summary="One background job with its payload and result", responses=_AUTH)
def get_job(
    request: Request,
    job_id: JobId,
    *,
    principal: IntegrationReadPrincipal,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote_addr: RemoteAddrDep,
) -> JobMetadata:
    job = operators.show_job(
        request.app.state.sessionmaker,
        audit,
        job_id,
        agent_who=principal.subject,
        request_id=request_id,
        remote_addr=remote_addr,
    )
    return JobMetadata.model_validate(operators.job_metadata(job, full=True))


@router.post("/{job_id}/replay", summary="Queue a dead or failed job again", responses=_AUTH)
def replay_job(
    request: Request,
    job_id: JobId,
    *,
    principal: IntegrationReplayPrincipal,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote_addr: RemoteAddrDep,
) -> JobMetadata:
    job = operators.replay_job(
        request.app.state.sessionmaker,
        audit,
        job_id,
        agent_who=principal.subject,
        request_id=request_id,
        remote_addr=remote_addr,
    )
    return JobMetadata.model_validate(operators.job_metadata(job))
