"""The clinician report pages, opened by a signed link from a CDS card.

- ``GET /reports/{analysis_id}?t=TOKEN``: the genomic report of one analysis, with the patient's
  imaging section when the imaging service has stored results (:mod:`cds_service.reports.imaging`).
- ``GET /reports/imaging/{result_id}?t=TOKEN``: the imaging report of one result (what the
  ``histopathology-ai`` card links to).

Both check the link and audit the view or the refusal the same way
(:class:`cds_service.reports.pages.ReportLink`): the token is checked before the database is
touched; a refusal is an HTML page that shows the OperationOutcome and no clinical data.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from cds_service.analyses.service import get_analysis_or_404, load_interpretation
from cds_service.db.session import DbSession
from cds_service.errors import NotFoundError
from cds_service.explanations.service import report_explanation
from cds_service.imaging import repository as imaging_repository
from cds_service.imaging.report import imaging_section
from cds_service.models.imaging import ImagingResult
from cds_service.reports.imaging import imaging_section_html, render_imaging_section
from cds_service.reports.pages import ReportLinkDep, render
from cds_service.reports.view import build_report_view

router = APIRouter(tags=["reports"])


@router.get("/reports/{analysis_id}", response_class=HTMLResponse, include_in_schema=True)
def report_page(
    analysis_id: str,
    request: Request,
    *,
    session: DbSession,
    link: ReportLinkDep,
) -> HTMLResponse:
    """The report page of one analysis, for the holder of a valid link."""
    analysis = link.open(
        analysis_id, lambda: get_analysis_or_404(session, analysis_id), entity_type="Analysis"
    )
    if isinstance(analysis, HTMLResponse):
        return analysis
    view = build_report_view(analysis, load_interpretation(analysis))
    imaging = imaging_section_html(request.app.state, session, analysis)
    return render(
        "report.html",
        view=view,
        imaging_section=imaging,
        explanation=report_explanation(session, analysis.id),
    )


@router.get("/reports/imaging/{result_id}", response_class=HTMLResponse)
def imaging_report_page(
    result_id: Annotated[str, Path(max_length=64)],
    request: Request,
    *,
    session: DbSession,
    link: ReportLinkDep,
) -> HTMLResponse:
    """The imaging report page of one result, for the holder of a valid link."""

    def load() -> ImagingResult:
        found = imaging_repository.get_result(session, result_id)
        if found is None:
            raise NotFoundError("no such imaging result")
        return found

    result = link.open(result_id, load, entity_type="ImagingResult", subtype="imaging")
    if isinstance(result, HTMLResponse):
        return result
    images = imaging_repository.images_of(session, [result.id])[result.id]
    section = None
    if result.status == "done" and images:
        stored = imaging_section(request.app.state.imaging, session, images)
        section = render_imaging_section(
            stored.items, model_card=stored.model_card, explanations=stored.explanations
        )
    return render("imaging_report.html", section=section, result=result, images=len(images))
