"""What every report page shares: its frame, its headers, and how a report link is opened.

A report link (from a CDS card) names one stored row and carries an expiring HMAC token
(:mod:`cds_service.reports.tokens`). A page route takes a :data:`ReportLinkDep` and calls
:meth:`ReportLink.open`: the token is checked before the database is touched, then the row is
loaded; a missing or malformed token is 401, a forged, foreign or expired one 403, an unknown
row 404: each an HTML page that shows the OperationOutcome and no clinical data. Every view and
every refusal is audited (``report.view``, agent ``report-link``).

Responses are ``no-store`` with ``Referrer-Policy: no-referrer`` (the URL holds the token) and a
strict Content-Security-Policy with a per-response nonce.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Protocol, TypeVar

from fastapi import Depends, Query
from fastapi.responses import HTMLResponse

from cds_service.api.deps import RequestAudit, RequestAuditDep, SettingsDep
from cds_service.errors import AuthenticationError, ForbiddenError, NotFoundError, OncoCDSError
from cds_service.reports.jinja import TEMPLATES
from cds_service.reports.tokens import MAX_TOKEN_CHARS, report_secret, verify_report_token
from cds_service.settings import Settings
from integrations.fhir.outcome import operation_outcome

#: The audit agent of a report view: whoever holds the link (the token names no person).
LINK_AGENT: Final = "report-link"


class LinkedRow(Protocol):
    """A stored row a report link may name (an analysis, an imaging result)."""

    @property
    def id(self) -> str: ...

    @property
    def patient_ref(self) -> str | None: ...


Row = TypeVar("Row", bound=LinkedRow)


def page_headers(nonce: str) -> dict[str, str]:
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
    """A report page from ``templates/`` with a fresh nonce and the report pages' headers."""
    nonce = secrets.token_urlsafe(16)
    html = TEMPLATES.get_template(template).render(nonce=nonce, **context)
    return HTMLResponse(html, status_code=status, headers=page_headers(nonce))


def error_page(exc: OncoCDSError) -> HTMLResponse:
    """The page of a refused or failed view: the OperationOutcome, no clinical data."""
    return render(
        "error.html",
        status=exc.status_code,
        status_code=exc.status_code,
        code=exc.code,
        message=exc.message,
        outcome=operation_outcome(exc.message, code=exc.code),
    )


@dataclass(frozen=True, slots=True)
class ReportLink:
    """The report link a page was opened with: its token, and where its view is audited."""

    token: str | None = field(repr=False)
    audit: RequestAudit
    settings: Settings

    def open(
        self,
        row_id: str,
        load: Callable[[], Row],
        *,
        entity_type: str,
        subtype: str | None = None,
    ) -> Row | HTMLResponse:
        """The row the link names, or the error page the link gets; audited either way.

        Args:
            row_id: the id in the link's path (the token is bound to it).
            load: reads the row, raising :class:`NotFoundError` when there is none; called only
                after the token is verified.
            entity_type: the row's audit entity type (``Analysis``, ``ImagingResult``).
            subtype: the ``report.view`` record's subtype (``imaging``); none for the genomic
                report.
        """
        try:
            verify_report_token(report_secret(self.settings), row_id, self.token)
            row = load()
        except (AuthenticationError, ForbiddenError, NotFoundError) as exc:
            self.audit.refused(
                action="R",
                event_type="report.view",
                event_subtype=subtype,
                reason=exc.message,
                agent_who=LINK_AGENT,
                entities=[{"type": entity_type, "id": row_id[:64]}],
            )
            return error_page(exc)
        self.audit.record(
            action="R",
            event_type="report.view",
            event_subtype=subtype,
            agent_who=LINK_AGENT,
            patient_id=row.patient_ref,
            entities=[{"type": entity_type, "id": row.id}],
        )
        return row


def report_link(
    settings: SettingsDep,
    audit: RequestAuditDep,
    t: Annotated[str | None, Query(max_length=MAX_TOKEN_CHARS)] = None,
) -> ReportLink:
    return ReportLink(t, audit, settings)


ReportLinkDep = Annotated[ReportLink, Depends(report_link)]
