"""Stored imaging results → the FHIR Bundle (API, write-back) and the report pages.

The resources are built by :mod:`integrations.fhir.imaging_report`, the page section by
:mod:`cds_service.reports.imaging`; this module turns rows into their inputs:

- :func:`imaging_resources`: a finished request's images as :class:`ImagingItem` s;
- :func:`items_of` and :func:`model_card_summary`: what the imaging report page of one result
  (:mod:`cds_service.reports.endpoints`, what the ``histopathology-ai`` card links to) shows;
- :func:`section_provider`: ``app.state.report_imaging``, which adds the patient's imaging
  results of the installed model to the genomic report page.

Every image must name the FHIR resource it was derived from (ImagingStudy, DocumentReference,
Media). An upload names none unless the client said which (``?derivedFrom=``); its analysis is
then stored and its heatmap served, but no FHIR report is built (:class:`NoFhirSourceError`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select

from cds_service.models.imaging import ImagingImage, ImagingRequest, ImagingResult
from cds_service.settings import Settings
from inference.imaging.results import ImageAnalysis

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cds_service.imaging.service import ImagingRuntime
    from cds_service.models.analysis import Analysis
    from cds_service.reports.imaging import ImagingSection, ModelCardSummary

MODEL_CARD_PATH: Final = "/imaging/model-card"
#: Most results (studies/documents) one genomic report page shows.
MAX_SECTION_RESULTS: Final = 20


class NoFhirSourceError(ValueError):
    """An image without the FHIR resource it was derived from: no FHIR report for it."""


def model_card_url(settings: Settings) -> str:
    return settings.base_url + MODEL_CARD_PATH


def items_of(
    images: Sequence[ImagingImage],
    heatmap_url: Callable[[int], str | None],
    *,
    require_source: bool,
) -> list[Any]:
    from integrations.fhir.imaging_report import ImagingItem

    items = []
    for n, img in enumerate(images):
        if img.derived_from is None and require_source:
            raise NoFhirSourceError("an uploaded image names no FHIR resource (derivedFrom)")
        items.append(
            ImagingItem(
                analysis=ImageAnalysis.from_json(dict(img.analysis), heatmap_png=img.heatmap_png),
                derived_from=img.derived_from or "uploaded image",
                label=img.label,
                study_uid=img.study_uid,
                instance_uid=img.instance_uid,
                heatmap_url=heatmap_url(n) if img.heatmap_png else None,
            )
        )
    return items


def _issued(results: Sequence[ImagingResult]) -> datetime:
    return max(r.updated for r in results)


def imaging_resources(
    settings: Settings,
    stored: ImagingRequest,
    results: Sequence[ImagingResult],
    images: Mapping[str, Sequence[ImagingImage]],
) -> Any:
    """The ``ImagingResources`` of a finished request (every result done).

    Raises:
        NoFhirSourceError: an image has no FHIR source, or the request no patient.
    """
    from integrations.fhir.imaging_report import build_imaging_resources

    if stored.patient_ref is None:
        raise NoFhirSourceError("the analysis names no patient")
    flat = [img for r in results for img in images.get(r.id, [])]
    base = f"{settings.base_url}/api/v1/imaging-analyses/{stored.id}/heatmaps"
    return build_imaging_resources(
        subject=stored.patient_ref,
        items=items_of(flat, lambda n: f"{base}/{n}.png", require_source=True),
        report_id=stored.id,
        issued=_issued(results),
        model_card_url=model_card_url(settings),
    )


def imaging_bundle(
    settings: Settings,
    stored: ImagingRequest,
    results: Sequence[ImagingResult],
    images: Mapping[str, Sequence[ImagingImage]],
) -> dict[str, Any]:
    bundle: dict[str, Any] = imaging_resources(settings, stored, results, images).bundle()
    return bundle


def model_card_summary(runtime: ImagingRuntime) -> ModelCardSummary | None:
    from cds_service.reports.imaging import ModelCardSummary
    from inference.imaging.bundle import verify_bundle

    if runtime.model is None:
        return None
    if runtime.card is None:
        info = verify_bundle(runtime.model.path)
        runtime.card = ModelCardSummary.from_bundle_metadata(info.metadata, url=MODEL_CARD_PATH)
    card: ModelCardSummary = runtime.card
    return card


def section_provider(
    runtime: ImagingRuntime,
) -> Callable[[Session, Analysis], ImagingSection | None]:
    """``app.state.report_imaging``: the patient's finished imaging results of the installed
    model, for the genomic report page of ``analysis``."""

    def provide(session: Session, analysis: Analysis) -> ImagingSection | None:
        model = runtime.model
        if model is None:
            return None
        result_ids = session.scalars(
            select(ImagingResult.id)
            .where(
                ImagingResult.patient_ref == analysis.patient_ref,
                ImagingResult.bundle_sha256 == model.bundle_sha256,
                ImagingResult.status == "done",
            )
            .order_by(ImagingResult.updated.desc())
            .limit(MAX_SECTION_RESULTS)
        ).all()
        if not result_ids:
            return None
        images = session.scalars(
            select(ImagingImage)
            .where(ImagingImage.result_id.in_(list(result_ids)))
            .order_by(ImagingImage.result_id, ImagingImage.position)
        ).all()
        return imaging_section(runtime, session, images)

    return provide


def imaging_section(
    runtime: ImagingRuntime, session: Session, images: Sequence[ImagingImage]
) -> ImagingSection:
    """The report section of these stored images: their items (no source image fetched), the
    model card and each image's explanation."""
    from cds_service.explanations.service import image_explanations
    from cds_service.reports.imaging import ImagingSection

    return ImagingSection(
        items=items_of(images, lambda n: None, require_source=False),
        model_card=model_card_summary(runtime),
        explanations=image_explanations(session, [i.id for i in images]),
    )


def enqueue_imaging_writeback(
    session: Session, settings: Settings, patient_ref: str | None
) -> list[str]:
    """Queue the write-back of every finished imaging request of the patient not yet queued.

    The existing write-back (:mod:`cds_service.writeback`) posts an ``analyses`` row's
    ``report_bundle``: a finished request's transaction Bundle (DiagnosticReport "preliminary",
    AI-labelled; Observations, Media, Device, Provenance) is stored as an analysis of kind
    ``imaging`` and its job enqueued; the API's sweeper (or ``oncocds writeback run-due``)
    posts it. Requests without a patient or a FHIR source for every image are left out.
    Flushes only. Returns the analysis ids queued.
    """
    from cds_service import __version__
    from cds_service.analyses.repository import add_analysis
    from cds_service.db.base import utcnow
    from cds_service.imaging import repository
    from cds_service.models.analysis import Analysis
    from cds_service.writeback.service import enqueue_writeback
    from integrations.errors import IntegrationError

    if not settings.writeback.enabled or patient_ref is None:
        return []
    waiting = session.scalars(
        select(ImagingRequest).where(
            ImagingRequest.patient_ref == patient_ref,
            ImagingRequest.writeback_analysis_id.is_(None),
            ImagingRequest.origin != "pacs",
        )
    ).all()
    queued: list[str] = []
    for stored in waiting:
        results = repository.get_results(session, stored.result_ids)
        if not results or any(r.status != "done" for r in results):
            continue
        images = repository.images_of(session, [r.id for r in results])
        try:
            resources = imaging_resources(settings, stored, results, images)
        except (NoFhirSourceError, IntegrationError):
            continue
        analysis = add_analysis(
            session,
            Analysis(
                id=str(uuid.uuid4()),
                created=utcnow(),
                patient_ref=patient_ref,
                source_kind="imaging",
                tumour_type_code=None,
                kb_version=f"imaging-bundle:{results[0].bundle_sha256[:32]}",
                oncocds_version=__version__,
                interpretation={"imagingRequest": stored.id},
                report_bundle=resources.bundle("transaction"),
            ),
        )
        enqueue_writeback(session, analysis, settings.writeback)
        stored.writeback_analysis_id = analysis.id
        queued.append(analysis.id)
    session.flush()
    return queued


def imaging_report_link(settings: Settings, result_id: str) -> str:
    """The imaging report page of one result with a fresh signed token (what cards link)."""
    from cds_service.reports.tokens import report_secret, sign_report_token

    token = sign_report_token(
        report_secret(settings), result_id, ttl_seconds=settings.reports.token_ttl_seconds
    )
    return f"{settings.base_url}/reports/imaging/{result_id}?t={token}"
