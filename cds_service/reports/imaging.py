"""The report page's imaging section (issue #15 §5): thumbnails, heatmaps, the calibrated
probability against its threshold, the outcome with its reasons, and the model card, under the
label "AI-generated; requires pathologist review".

:func:`render_imaging_section` turns stored analyses (:class:`ImagingItem`, the same items the
FHIR builder takes) into an HTML fragment. The report page includes it when imaging results are
present: the imaging service sets ``app.state.report_imaging`` to an
:data:`ImagingSectionProvider` (``(session, analysis) -> ImagingSection | None``) that reads its
storage; :func:`imaging_section_html` calls it and renders. A provider that fails leaves the
genomic report intact and says the imaging results are unavailable.

Images are shown inline (``data:`` URIs, which the page's Content-Security-Policy allows) when
the PNG bytes are at hand and small enough, else from their served URL (same origin). Nothing
here is a diagnosis, and nothing is computed that the stored analysis does not hold.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from markupsafe import Markup

from cds_service.reports.jinja import TEMPLATES
from inference.imaging.results import ImageAnalysis, ModelIdentity
from integrations.fhir.imaging_report import AI_LABEL, MAX_INLINE_HEATMAP_BYTES, ImagingItem

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cds_service.models.analysis import Analysis
    from inference.imaging.bundle import BundleMetadata

__all__ = [
    "AI_LABEL",
    "ImagingSection",
    "ImagingSectionProvider",
    "ModelCardSummary",
    "imaging_section_html",
    "render_imaging_section",
]

logger = logging.getLogger(__name__)

#: Most bytes of images put inline in one page (data: URIs); further images use their URL or
#: are named as not shown.
MAX_INLINE_PAGE_BYTES: Final = 8 * 1024 * 1024
#: Most images one section shows.
MAX_SECTION_ITEMS: Final = 200
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_BAR: Final = 240  # probability bar width in SVG units


@dataclass(frozen=True, slots=True)
class ModelCardSummary:
    """What the page shows of a model card beyond :class:`ModelIdentity` (each may be unknown).

    Attributes:
        intended_use / training_data / limitations: short plain-text statements.
        url: where the full model card can be read (same origin or an https page).
        metrics: evaluation figures as the bundle states them (name → value, or None).
    """

    intended_use: str | None = None
    training_data: str | None = None
    limitations: str | None = None
    url: str | None = None
    metrics: Mapping[str, float | None] = field(default_factory=dict)

    @classmethod
    def from_bundle_metadata(
        cls, metadata: BundleMetadata, *, url: str | None = None
    ) -> ModelCardSummary:
        """The summary a verified bundle's ``metadata.json`` states (nothing added)."""
        data = metadata.training_data
        training = (
            f"{data.source} (licence {data.licence}); patients {_counts(data.patients)}; "
            f"patches {_counts(data.patches)}; positives {_counts(data.positives)}; "
            f"split: {data.split}."
        )
        extra = metadata.model_extra or {}
        limitations = extra.get("limitations")
        return cls(
            intended_use=metadata.intended_use,
            training_data=training,
            limitations=limitations if isinstance(limitations, str) else None,
            url=url,
            metrics=dict(metadata.eval_metrics),
        )


@dataclass(frozen=True, slots=True)
class ImagingSection:
    """What a provider returns for one report: the analysed images and the model card."""

    items: Sequence[ImagingItem]
    model_card: ModelCardSummary | None = None
    #: Per item, in order: its plain-language explanation as the page shows it (issue 16;
    #: ``cds_service.explanations.service.image_explanations``), or None when none was asked.
    explanations: Sequence[Mapping[str, Any] | None] = ()


#: ``app.state.report_imaging``: reads the stored imaging results for a report's analysis.
ImagingSectionProvider = Callable[["Session", "Analysis"], ImagingSection | None]


# ----------------------------------------------------------------------------- view model


@dataclass(frozen=True, slots=True)
class _Row:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class _ImageView:
    number: int
    label: str
    source: str
    outcome: str
    outcome_text: str
    reasons: str
    probability: str
    threshold: str
    above_threshold: bool | None
    bar_width: float
    cut_x: float
    rows: tuple[_Row, ...]
    heatmap_src: str | None
    heatmap_note: str
    thumbnail_src: str | None
    model_key: str
    explanation: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _ModelView:
    key: str
    name: str
    version: str
    rows: tuple[_Row, ...]
    url: str | None


_OUTCOME_TEXT: Final = {
    "positive": "Positive: at least one tissue tile at or above the threshold",
    "negative": "Negative: no tissue tile at or above the threshold",
    "indeterminate": "Indeterminate: the out-of-distribution guard set this image aside",
}


class _InlineBudget:
    def __init__(self, limit: int) -> None:
        self.left = limit

    def data_uri(self, png: bytes | None) -> str | None:
        if png is None or not png.startswith(_PNG_SIGNATURE):
            return None
        if len(png) > MAX_INLINE_HEATMAP_BYTES or len(png) > self.left:
            return None
        self.left -= len(png)
        return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _safe_url(url: str | None) -> str | None:
    """Same-origin paths and https URLs only (never ``javascript:`` or ``data:`` from storage)."""
    if not url:
        return None
    if url.startswith("/") and not url.startswith("//"):
        return url
    if url.startswith("https://"):
        return url
    return None


def _probability(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}"


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "not stated"


def _image_view(number: int, item: ImagingItem, budget: _InlineBudget) -> _ImageView:
    analysis: ImageAnalysis = item.analysis
    model = analysis.model
    indeterminate = analysis.outcome == "indeterminate"
    probability = None if indeterminate else analysis.max_probability
    rows = [
        _Row("Highest calibrated tile probability", _probability(probability)),
        _Row("Threshold", _probability(model.threshold)),
    ]
    if not indeterminate:
        rows.append(_Row("Tissue area at or above threshold", _percent(analysis.positive_fraction)))
        rows.append(_Row("Mean tile probability", _probability(analysis.mean_probability)))
    rows.append(
        _Row(
            "Tiles",
            f"{analysis.tiles_tissue} tissue of {analysis.tiles_total}; "
            f"{analysis.tiles_indeterminate} set aside by the OOD guard",
        )
    )
    rows.append(_Row("Image size", f"{analysis.width} x {analysis.height} pixels"))
    if item.study_uid:
        rows.append(_Row("Study Instance UID", item.study_uid))
    if item.instance_uid:
        rows.append(_Row("SOP Instance UID", item.instance_uid))

    heatmap = budget.data_uri(analysis.heatmap_png) or _safe_url(item.heatmap_url)
    if heatmap is not None:
        note = ""
    elif analysis.heatmap_png is not None or item.heatmap_url:
        note = "Heatmap not shown (over the page's size limit or not a PNG)."
    else:
        note = "No heatmap was produced for this image."
    thumbnail = budget.data_uri(item.thumbnail_png) or _safe_url(item.thumbnail_url)
    return _ImageView(
        number=number,
        label=item.label,
        source=item.derived_from,
        outcome=analysis.outcome,
        outcome_text=_OUTCOME_TEXT[analysis.outcome],
        reasons=", ".join(analysis.reasons) if indeterminate else "",
        probability=_probability(probability),
        threshold=_probability(model.threshold),
        above_threshold=None if probability is None else probability >= model.threshold,
        bar_width=round(_BAR * min(1.0, max(0.0, probability or 0.0)), 1),
        cut_x=round(_BAR * min(1.0, max(0.0, model.threshold)), 1),
        rows=tuple(rows),
        heatmap_src=heatmap,
        heatmap_note=note,
        thumbnail_src=thumbnail,
        model_key=model.bundle_sha256,
    )


def _model_view(model: ModelIdentity, card: ModelCardSummary | None) -> _ModelView:
    spacing = "not stated" if model.spacing_mm is None else f"{model.spacing_mm:g} mm per pixel"
    rows = [
        _Row("Network", model.network),
        _Row("Patch size", f"{model.patch_size} pixels"),
        _Row("Training magnification", spacing),
        _Row("Calibration temperature", f"{model.temperature:g}"),
        _Row("Decision threshold", f"{model.threshold:g}"),
        _Row("Bundle SHA-256", model.bundle_sha256),
        _Row("Weights SHA-256", model.weights_sha256),
    ]
    card = card or ModelCardSummary()
    rows += [
        _Row("Intended use", card.intended_use or "not stated in the model card"),
        _Row("Training data", card.training_data or "not stated in the model card"),
        _Row("Limitations", card.limitations or "not stated in the model card"),
    ]
    for name, value in card.metrics.items():
        rows.append(_Row(f"Evaluation: {name}", "unknown" if value is None else f"{value:.3g}"))
    return _ModelView(
        key=model.bundle_sha256,
        name=model.name,
        version=model.version,
        rows=tuple(rows),
        url=_safe_url(card.url),
    )


# ----------------------------------------------------------------------------- rendering


def render_imaging_section(
    items: Sequence[ImagingItem],
    *,
    model_card: ModelCardSummary | None = None,
    explanations: Sequence[Mapping[str, Any] | None] = (),
) -> Markup:
    """The imaging section's HTML (autoescaped) for the report page.

    Args:
        items: the analysed images in display order (at most :data:`MAX_SECTION_ITEMS` shown;
            the section says how many more there are).
        model_card: the model card's statements, if known (applies to every model shown;
            what it lacks is shown as "not stated").
        explanations: per item, its explanation (pending notice, or labelled sections: a
            model's text says "Model-generated (model, digest); not verified").
    """
    budget = _InlineBudget(MAX_INLINE_PAGE_BYTES)
    shown = list(items)[:MAX_SECTION_ITEMS]
    images = [_image_view(n, item, budget) for n, item in enumerate(shown, start=1)]
    for index, explanation in enumerate(list(explanations)[: len(images)]):
        if explanation is not None:
            images[index] = replace(images[index], explanation=explanation)
    models: dict[str, _ModelView] = {}
    for item in shown:
        model = item.analysis.model
        if model.bundle_sha256 not in models:
            models[model.bundle_sha256] = _model_view(model, model_card)
    html = TEMPLATES.get_template("_imaging_section.html").render(
        images=images,
        models=list(models.values()),
        hidden=max(0, len(items) - len(shown)),
        ai_label=AI_LABEL,
        unavailable=False,
    )
    return Markup(html)  # noqa: S704 - rendered by an autoescaping Jinja2 template


def render_imaging_unavailable() -> Markup:
    """The section when the stored imaging results could not be read."""
    html = TEMPLATES.get_template("_imaging_section.html").render(
        images=[], models=[], hidden=0, ai_label=AI_LABEL, unavailable=True
    )
    return Markup(html)  # noqa: S704 - rendered by an autoescaping Jinja2 template


def imaging_section_html(state: Any, session: Session, analysis: Analysis) -> Markup | None:
    """The report page's imaging section, or None when there are no imaging results.

    ``state`` is ``app.state``; its ``report_imaging`` provider (set by the imaging service)
    reads the stored results. No provider, or no items: no section.
    """
    provider: ImagingSectionProvider | None = getattr(state, "report_imaging", None)
    if provider is None:
        return None
    try:
        section = provider(session, analysis)
    except Exception as exc:  # noqa: BLE001 - the genomic report must still be shown
        logger.warning("imaging section unavailable (%s)", type(exc).__name__)
        return render_imaging_unavailable()
    if section is None or not section.items:
        return None
    return render_imaging_section(
        section.items, model_card=section.model_card, explanations=section.explanations
    )
