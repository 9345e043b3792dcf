"""Stored imaging results → the FHIR Bundle (API, write-back) and the report page.

The resources themselves are built by :mod:`integrations.fhir.imaging_report`; the page's
imaging section by its render function. This module only turns rows into their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fastapi.responses import HTMLResponse

from cds_service.models.imaging import ImagingImage, ImagingRequest, ImagingResult
from cds_service.settings import Settings
from inference.imaging.results import ImageAnalysis

MODEL_CARD_PATH = "/imaging/model-card"


def model_card_url(settings: Settings) -> str:
    return settings.base_url + MODEL_CARD_PATH


def _items(images: Sequence[ImagingImage], heatmap_url: Any) -> list[Any]:
    from integrations.fhir.imaging_report import ImagingItem

    return [
        ImagingItem(
            analysis=ImageAnalysis.from_json(dict(img.analysis), heatmap_png=img.heatmap_png),
            derived_from=img.derived_from,
            label=img.label,
            study_uid=img.study_uid,
            instance_uid=img.instance_uid,
            heatmap_url=heatmap_url(n) if img.heatmap_png else None,
        )
        for n, img in enumerate(images)
    ]


def _issued(results: Sequence[ImagingResult]) -> datetime:
    return max(r.updated for r in results)


def imaging_resources(
    settings: Settings,
    stored: ImagingRequest,
    results: Sequence[ImagingResult],
    images: Mapping[str, Sequence[ImagingImage]],
) -> Any:
    """The :class:`ImagingResources` of a finished request (every result done)."""
    from integrations.fhir.imaging_report import build_imaging_resources

    flat = [img for r in results for img in images.get(r.id, [])]
    base = f"{settings.base_url}/api/v1/imaging-analyses/{stored.id}/heatmaps"
    return build_imaging_resources(
        subject=stored.patient_ref,
        items=_items(flat, lambda n: f"{base}/{n}.png"),
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


def report_page_html(
    settings: Settings, result: ImagingResult, images: Sequence[ImagingImage]
) -> HTMLResponse:
    """The report page of one result: the imaging section (thumbnails, heatmaps, probability
    and threshold, model card), in the report page's frame and headers."""
    from integrations.fhir.imaging_report import render_imaging_section

    from cds_service.reports.endpoints import render

    items = _items(images, lambda n: None)
    section = render_imaging_section(
        items, status=result.status, model_card_url=model_card_url(settings)
    )
    return render("imaging.html", section=section, result=result)
