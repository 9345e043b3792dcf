"""``GET /reports/{id}?t=TOKEN``: the clinician report page.

The link (from a CDS card) carries an expiring HMAC token (:mod:`cds_service.reports.tokens`);
the token is checked before the database is touched. A missing or malformed token is 401, a
forged, foreign or expired one 403, an unknown analysis 404: each an HTML page that shows the
OperationOutcome and no clinical data. Every view and every refusal is audited
(``report.view``). Responses are ``no-store`` with ``Referrer-Policy: no-referrer`` (the URL
holds the token) and a strict Content-Security-Policy with a per-response nonce.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from cds_service.analyses.service import get_analysis_or_404, load_interpretation
from cds_service.api.deps import AuditDep, RemoteAddrDep, RequestIdDep, SettingsDep
from cds_service.audit.service import Outcome
from cds_service.db.session import DbSession
from cds_service.errors import AuthenticationError, ForbiddenError, NotFoundError, OncoCDSError
from cds_service.reports.imaging import imaging_section_html
from cds_service.reports.tokens import MAX_TOKEN_CHARS, report_secret, verify_report_token
from cds_service.reports.view import build_report_view
from integrations.fhir.outcome import operation_outcome

router = APIRouter(tags=["reports"])

_templates = Environment(
    loader=PackageLoader("cds_service.reports", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _headers(nonce: str) -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
    }


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template(template).render(nonce=nonce, **context)
    return HTMLResponse(html, status_code=status, headers=_headers(nonce))


def _error_page(exc: OncoCDSError) -> HTMLResponse:
    return render(
        "error.html",
        status=exc.status_code,
        status_code=exc.status_code,
        code=exc.code,
        message=exc.message,
        outcome=operation_outcome(exc.message, code=exc.code),
    )


@router.get("/reports/{analysis_id}", response_class=HTMLResponse, include_in_schema=True)
def report_page(
    analysis_id: str,
    request: Request,
    *,
    session: DbSession,
    settings: SettingsDep,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
    t: Annotated[str | None, Query(max_length=MAX_TOKEN_CHARS)] = None,
) -> HTMLResponse:
    """The report page of one analysis, for the holder of a valid link."""
    try:
        verify_report_token(report_secret(settings), analysis_id, t)
        analysis = get_analysis_or_404(session, analysis_id)
    except (AuthenticationError, ForbiddenError, NotFoundError) as exc:
        audit.record(
            action="R",
            event_type="report.view",
            outcome=Outcome.MINOR_FAILURE,
            outcome_desc=exc.message,
            agent_who="report-link",
            entities=[{"type": "Analysis", "id": analysis_id[:64]}],
            request_id=request_id,
            remote_addr=remote,
        )
        return _error_page(exc)
    view = build_report_view(analysis, load_interpretation(analysis))
    audit.record(
        action="R",
        event_type="report.view",
        agent_who="report-link",
        patient_id=analysis.patient_ref,
        entities=[{"type": "Analysis", "id": analysis.id}],
        request_id=request_id,
        remote_addr=remote,
    )
    # The imaging section, when the imaging service has stored results (app.state.report_imaging).
    imaging = imaging_section_html(request.app.state, session, analysis)
    return render("report.html", view=view, imaging_section=imaging)
