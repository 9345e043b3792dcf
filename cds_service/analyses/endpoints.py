"""``POST /api/v1/analyses`` interprets variants; ``GET /api/v1/analyses/{id}`` returns the report.

POST accepts a FHIR Bundle (Patient, Condition, Observations), a VCF, a CSV/TSV table or a text
list. The tumour type comes from the Bundle's Conditions or the ``tumour_type`` parameter; the
answer is the Genomics Reporting transaction Bundle (201, ``Location`` of the stored analysis).

Both routes are for clinical API clients: the bearer token is a trusted client's JWT whose
``aud`` is the exact URL called (:func:`cds_service.security.deps.require_client_jwt`), checked
before the body is read; a refusal is a bare 401 and an ``auth.rejected`` audit record. The
audit agent of every analysis read and write is the client's ``iss``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from cds_service.analyses.intake import AnalysisInput, interpret_upload
from cds_service.analyses.service import get_analysis_or_404, store_analysis
from cds_service.api.deps import RequestAuditDep, SettingsDep
from cds_service.api.errors import FHIR_JSON
from cds_service.api.responses import (
    BINARY,
    NO_SUCH_ANALYSIS,
    OBJECT,
    TEXT,
    client_responses,
    request_body,
)
from cds_service.db.session import DbSession
from cds_service.security.deps import ClientCaller
from cds_service.writeback.service import enqueue_writeback

router = APIRouter(prefix="/api/v1/analyses", tags=["analyses"])


async def _raw_body(request: Request) -> bytes:
    # Read here (async) so the handler can stay sync; the size limit has already applied.
    return await request.body()


@router.post(
    "",
    status_code=201,
    response_class=JSONResponse,
    responses=client_responses(
        {201: "the Genomics Reporting transaction Bundle"},
        {400: "unreadable input or unknown tumour type"},
    ),
    openapi_extra=request_body(
        {
            "application/fhir+json": OBJECT,
            "text/plain": TEXT,
            "text/csv": TEXT,
            "application/octet-stream": BINARY,
        }
    ),
)
def create_analysis(
    *,
    caller: ClientCaller,
    body: Annotated[bytes, Depends(_raw_body)],
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    audit: RequestAuditDep,
    tumour_type: Annotated[str | None, Query(max_length=200)] = None,
    patient: Annotated[
        str | None, Query(max_length=256, pattern=r"^[A-Za-z]+/[A-Za-z0-9.-]{1,64}$")
    ] = None,
    input_format: Annotated[
        str | None, Query(alias="format", pattern="^(vcf|fhir|csv|tsv|text)$")
    ] = None,
    build: Annotated[str | None, Query(pattern="^GRCh3[78]$")] = None,
    context: Annotated[str | None, Query(max_length=200)] = None,
    origin: Annotated[str | None, Query(pattern="^(somatic|germline|unknown)$")] = None,
) -> Any:
    """Interpret the uploaded variants, store the analysis and return its report Bundle."""
    upload = AnalysisInput(
        body=body,
        content_type=request.headers.get("content-type", ""),
        input_format=input_format,
        tumour_type=tumour_type,
        patient=patient,
        build=build,
        clinical_context=context,
        origin=origin,
    )
    result = interpret_upload(upload)
    analysis = store_analysis(
        session, result.interpretation, result.patient_ref, result.source_kind
    )
    # With write-back configured this also enqueues its round (a background job, issue 17);
    # the commit wakes the job executor.
    enqueue_writeback(session, analysis, settings.writeback)
    session.commit()
    audit.record(
        action="C",
        event_type="analysis.create",
        agent_who=caller.iss,
        patient_id=result.patient_ref,
        entities=[{"type": "Analysis", "id": analysis.id}],
        details={
            "source_kind": result.source_kind,
            "alterations": len(result.interpretation.alterations),
            "problems": len(result.problems),
        },
    )
    headers = {"Location": f"/api/v1/analyses/{analysis.id}", "X-Analysis-Id": analysis.id}
    return JSONResponse(
        analysis.report_bundle, status_code=201, media_type=FHIR_JSON, headers=headers
    )


@router.get(
    "/{analysis_id}",
    response_class=JSONResponse,
    responses=client_responses({}, {404: NO_SUCH_ANALYSIS}),
)
def read_analysis(
    analysis_id: str,
    *,
    caller: ClientCaller,
    session: DbSession,
    audit: RequestAuditDep,
) -> Any:
    """The analysis's Genomics Reporting transaction Bundle, exactly as stored."""
    analysis = get_analysis_or_404(session, analysis_id)
    audit.record(
        action="R",
        event_type="analysis.read",
        agent_who=caller.iss,
        patient_id=analysis.patient_ref,
        entities=[{"type": "Analysis", "id": analysis.id}],
    )
    return JSONResponse(analysis.report_bundle, media_type=FHIR_JSON)
