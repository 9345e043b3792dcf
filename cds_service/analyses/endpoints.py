"""``GET /api/v1/analyses/{id}``: the stored report Bundle (FHIR JSON).

``POST /api/v1/analyses`` is added by the intake wiring (it needs the intake readers and the
interpreter); it calls :func:`cds_service.analyses.service.store_analysis`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cds_service.analyses.service import get_analysis_or_404
from cds_service.api.deps import AuditDep, RemoteAddrDep, RequestIdDep
from cds_service.api.errors import FHIR_JSON
from cds_service.db.session import DbSession

router = APIRouter(prefix="/api/v1/analyses", tags=["analyses"])


@router.get(
    "/{analysis_id}",
    response_class=JSONResponse,
    responses={404: {"description": "OperationOutcome: no such analysis"}},
)
def read_analysis(
    analysis_id: str,
    *,
    session: DbSession,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
) -> Any:
    """The analysis's Genomics Reporting transaction Bundle, exactly as stored."""
    analysis = get_analysis_or_404(session, analysis_id)
    audit.record(
        action="R",
        event_type="analysis.read",
        agent_who="api",
        patient_id=analysis.patient_ref,
        entities=[{"type": "Analysis", "id": analysis.id}],
        request_id=request_id,
        remote_addr=remote,
    )
    return JSONResponse(analysis.report_bundle, media_type=FHIR_JSON)
