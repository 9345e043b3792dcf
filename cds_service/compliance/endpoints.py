"""The compliance API: ``/api/v1/audit`` search, record, verification, disclosures, export.

Every route needs a bearer token from the site's OIDC provider with ``audit.read`` (export:
``audit.export``); every call, and every refusal, appends an audit record. Responses carry audit
records only (identifiers), never clinical payloads.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from cds_service.api.deps import AuditDep, RemoteAddrDep, RequestIdDep, SettingsDep
from cds_service.audit.checkpoints import (
    last_checkpoint,
    list_checkpoints,
    seal,
    verify_integrity,
)
from cds_service.audit.signing import public_jwk
from cds_service.compliance import service, state
from cds_service.compliance.auth import ExportPrincipal, ReadPrincipal
from cds_service.compliance.repository import AuditFilter, AuditRepository
from cds_service.compliance.schemas import AuditRecordOut, DisclosureReport, SearchPage
from cds_service.errors import BadRequestError, NotFoundError

log = logging.getLogger(__name__)


# Periodic sealing (ONCOCDS_AUDIT__CHECKPOINT_INTERVAL_SECONDS) is the ``audit.seal`` job
# (cds_service/compliance/jobs.py), run once across all processes by the job system.
router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

Str256 = Annotated[str | None, Query(max_length=256)]


def filter_params(
    *,
    patient: Str256 = None,
    agent: Annotated[str | None, Query(max_length=512)] = None,
    since: Annotated[datetime | None, Query(description="recorded at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="recorded before (ISO 8601)")] = None,
    action: Annotated[Literal["C", "R", "U", "D", "E"] | None, Query()] = None,
    event_type: Annotated[str | None, Query(alias="eventType", max_length=64)] = None,
    outcome: Annotated[int | None, Query(description="0, 4, 8 or 12")] = None,
    request_id: Annotated[str | None, Query(alias="requestId", max_length=128)] = None,
    hook_instance: Annotated[str | None, Query(alias="hookInstance", max_length=128)] = None,
    control_id: Annotated[str | None, Query(alias="controlId", max_length=64)] = None,
) -> AuditFilter:
    if outcome is not None and outcome not in (0, 4, 8, 12):
        raise BadRequestError("outcome must be 0, 4, 8 or 12 (FHIR audit-event-outcome)")
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise BadRequestError("since/until must carry a time zone (e.g. Z)")
    return AuditFilter(
        patient=patient,
        agent=agent,
        since=since,
        until=until,
        action=action,
        event_type=event_type,
        outcome=outcome,
        request_id=request_id,
        hook_instance=hook_instance,
        control_id=control_id,
    )


FilterDep = Annotated[AuditFilter, Depends(filter_params)]


def _repo(request: Request) -> AuditRepository:
    return AuditRepository(request.app.state.engine)


@router.get("", response_model=SearchPage, summary="Search the audit trail (newest first)")
def search(
    *,
    request: Request,
    principal: ReadPrincipal,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
    flt: FilterDep,
    cursor: Annotated[int | None, Query(ge=1, description="nextCursor of the last page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SearchPage:
    rows, next_cursor = _repo(request).search(flt, cursor=cursor, limit=limit)
    used = flt.used()
    used.pop("patient", None)
    service.audit_access(
        audit,
        principal,
        event_type="audit.query",
        patient_id=flt.patient,
        request_id=request_id,
        remote_addr=remote,
        details={"filters": used, "cursor": cursor, "results": len(rows)},
    )
    return SearchPage(
        items=[AuditRecordOut.model_validate(r) for r in rows], next_cursor=next_cursor, limit=limit
    )


@router.get("/verify", summary="Verify the hash chain, checkpoint tree heads and signatures")
def verify(
    *,
    request: Request,
    principal: ReadPrincipal,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
    from_seq: Annotated[int | None, Query(alias="from", ge=1)] = None,
    to_seq: Annotated[int | None, Query(alias="to", ge=1)] = None,
    recent: Annotated[
        bool,
        Query(
            description="Quick check for the console: every checkpoint's signature and tail, "
            "but only the records of the last checkpoint and those after it."
        ),
    ] = False,
) -> dict[str, Any]:
    engine = request.app.state.engine
    if recent and from_seq is None:
        last = last_checkpoint(engine)
        from_seq = last.first_seq if last else None
    report = verify_integrity(engine, state.keyring(request.app), from_seq=from_seq, to_seq=to_seq)
    first = report.first_problem
    service.audit_access(
        audit,
        principal,
        event_type="audit.verify",
        request_id=request_id,
        remote_addr=remote,
        details={
            "from": from_seq,
            "to": to_seq,
            "recent": recent,
            "ok": report.ok,
            "checked": report.records_checked,
            "firstBrokenSeq": first.seq if first else None,
        },
    )
    return {
        **report.as_json(),
        "scope": "recent" if recent else "range" if from_seq or to_seq else "full",
    }


@router.get("/checkpoints", summary="Export the signed checkpoints and the public key")
def checkpoints(
    *,
    request: Request,
    principal: ReadPrincipal,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
) -> dict[str, Any]:
    with request.app.state.engine.connect() as conn:
        items = list_checkpoints(conn)
    service.audit_access(
        audit,
        principal,
        event_type="audit.checkpoints",
        action="R",
        request_id=request_id,
        remote_addr=remote,
        details={"count": len(items)},
    )
    return {
        "publicKey": public_jwk(state.signer(request.app).public_key),
        "checkpoints": [cp.as_json() for cp in items],
    }


@router.get(
    "/disclosures",
    response_model=DisclosureReport,
    summary="Accounting of disclosures for one patient (45 CFR 164.528)",
)
def disclosures(
    *,
    request: Request,
    principal: ReadPrincipal,
    audit: AuditDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
    patient: Annotated[str, Query(min_length=1, max_length=256)],
    since: datetime | None = None,
    until: datetime | None = None,
) -> DisclosureReport:
    start = since or service.retention_start(settings.audit.retention_years)
    end = until or datetime.now(tz=start.tzinfo)
    if start.tzinfo is None or end.tzinfo is None:
        raise BadRequestError("since/until must carry a time zone (e.g. Z)")
    report = service.disclosures(_repo(request), patient, since=start, until=end)
    service.audit_access(
        audit,
        principal,
        event_type="audit.disclosures",
        patient_id=patient,
        request_id=request_id,
        remote_addr=remote,
        details={"entries": len(report.disclosures), "since": start.isoformat()},
    )
    return report


@router.get(
    "/export",
    summary="Export as a FHIR R4 AuditEvent Bundle or CSV (streamed, sealed records only)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/fhir+json": {}, "text/csv": {}}}},
)
def export(
    *,
    request: Request,
    principal: ExportPrincipal,
    audit: AuditDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
    flt: FilterDep,
    format: Literal["fhir", "csv"] = "fhir",  # noqa: A002 - the public query parameter name
) -> StreamingResponse:
    engine = request.app.state.engine
    # Seal first, so that every exported record is covered by a signed checkpoint.
    seal(engine, state.signer(request.app), max_records=settings.audit.checkpoint_max_records)
    with engine.connect() as conn:
        cps = list_checkpoints(conn)
    plan = service.plan_export(audit, cps[-1].last_seq if cps else None)
    used = flt.used()
    used.pop("patient", None)
    ref = service.audit_access(
        audit,
        principal,
        event_type="audit.export",
        patient_id=flt.patient,
        request_id=request_id,
        remote_addr=remote,
        details={
            "format": format,
            "filters": used,
            "throughSeq": plan.through_seq,
            "checkpointId": plan.checkpoints[-1].id if plan.checkpoints else None,
        },
    )
    headers = {
        "X-OncoCDS-Audit-Export-Id": ref.id,
        "X-OncoCDS-Audit-Sealed-To": str(plan.through_seq),
        "X-OncoCDS-Audit-Checkpoint": str(plan.checkpoints[-1].id) if plan.checkpoints else "",
        "Cache-Control": "no-store",
    }
    repo = _repo(request)
    if format == "csv":
        headers["Content-Disposition"] = f'attachment; filename="audit-{ref.id}.csv"'
        return StreamingResponse(
            service.csv_stream(repo, flt, plan), media_type="text/csv", headers=headers
        )
    headers["Content-Disposition"] = f'attachment; filename="audit-{ref.id}.json"'
    return StreamingResponse(
        service.fhir_bundle_stream(repo, flt, plan, export_id=ref.id),
        media_type="application/fhir+json",
        headers=headers,
    )


@router.get("/{record_id}", response_model=AuditRecordOut, summary="One audit record")
def get_record(
    *,
    request: Request,
    principal: ReadPrincipal,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
    record_id: Annotated[str, Path(max_length=64)],
) -> AuditRecordOut:
    row = _repo(request).get(record_id)
    service.audit_access(
        audit,
        principal,
        event_type="audit.read",
        action="R",
        patient_id=row["patient_id"] if row else None,
        request_id=request_id,
        remote_addr=remote,
        details={"recordId": record_id, "found": row is not None},
    )
    if row is None:
        raise NotFoundError("no audit record with that id")
    return AuditRecordOut.model_validate(row)
