"""The report page's imaging section: rendered HTML, escaping, limits, and the page hook.

The analyses are fixed invented numbers (``imaging_examples``); no model runs (plumbing only).
The page tests use the real report route and database; the imaging service's storage is the one
thing stood in for, by a provider on ``app.state.report_imaging`` returning fixed items.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from cds_service.analyses.service import store_analysis
from cds_service.app import create_app
from cds_service.reports.imaging import (
    MAX_INLINE_PAGE_BYTES,
    ImagingSection,
    ModelCardSummary,
    render_imaging_section,
)
from cds_service.reports.tokens import report_link
from cds_service.settings import Settings
from inference.imaging.bundle import BundleMetadata
from integrations.fhir.imaging_report import MAX_INLINE_HEATMAP_BYTES, ImagingItem
from tests.genomics_examples import ISSUED, braf_crc_interpretation
from tests.integrations.fhir.imaging_examples import MODEL, TINY_PNG, analysis, items

LABEL = "AI-generated; requires pathologist review"
CARD = ModelCardSummary(
    intended_use="Research triage of H&E breast patches.",
    training_data="Kaggle IDC patches (CC0); patients train 3.",
    limitations="Not validated on frozen sections.",
    url="/models/idc/card",
    metrics={"test_roc_auc": 0.912, "test_brier": None},
)


class _Collect(HTMLParser):
    """Tags with their attributes, and the text, of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def _articles(parsed: _Collect) -> list[dict[str, str | None]]:
    return [a for t, a in parsed.tags if t == "article"]


def _images(parsed: _Collect) -> list[dict[str, str | None]]:
    return [a for t, a in parsed.tags if t == "img"]


def _text(parsed: _Collect) -> str:
    return re.sub(r"\s+", " ", "".join(parsed.text))


def test_section_shows_outcomes_probabilities_heatmaps_and_the_label() -> None:
    html = str(render_imaging_section(items(), model_card=CARD))
    parsed = _parse(html)
    text = _text(parsed)
    assert f"{LABEL}." in text
    articles = _articles(parsed)
    assert [(a["data-outcome"], a["data-probability"], a["data-threshold"]) for a in articles] == [
        ("positive", "0.93", "0.50"),
        ("negative", "0.12", "0.50"),
        # no number for an image the OOD guard set aside
        ("indeterminate", "unknown", "0.50"),
    ]
    assert "Calibrated probability 0.93 ≥ threshold 0.50" in text
    assert "Calibrated probability 0.12 < threshold 0.50" in text
    assert "the out-of-distribution guard set this image aside: blurred, not H&E-like." in text
    assert "Tissue area at or above threshold27.5 %" in text
    # Heatmaps: the first two have PNG bytes, shown inline; the third has none.
    heatmaps = [a for a in _images(parsed) if a.get("class") == "heatmap"]
    assert len(heatmaps) == 2
    for img in heatmaps:
        src = img["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.removeprefix("data:image/png;base64,")) == TINY_PNG
        assert "AI-generated" in (img["alt"] or "")
    assert "No heatmap was produced for this image." in text


def test_model_card_names_model_version_hash_and_unknowns() -> None:
    text = _text(_parse(str(render_imaging_section(items(), model_card=CARD))))
    assert "Model card: idc-resnet18 2026.11.1" in text
    assert "Bundle SHA-256" + "a" * 64 in text
    assert "Weights SHA-256" + "b" * 64 in text
    assert "Training dataKaggle IDC patches (CC0); patients train 3." in text
    assert "LimitationsNot validated on frozen sections." in text
    assert "Evaluation: test_roc_auc0.912" in text
    assert "Evaluation: test_brierunknown" in text
    assert "Decision threshold0.5" in text
    bare = _text(_parse(str(render_imaging_section(items()))))
    assert "Intended usenot stated in the model card" in bare
    assert "Limitationsnot stated in the model card" in bare


def test_served_heatmaps_and_thumbnails_use_same_origin_or_https_urls_only() -> None:
    base = items()[1]
    served = replace(
        base,
        analysis=replace(base.analysis, heatmap_png=None),
        heatmap_url="/api/v1/imaging-analyses/an-2/heatmap.png",
        thumbnail_url="https://pacs.example.org/thumb/2.png",
    )
    hostile = replace(
        base,
        analysis=replace(base.analysis, heatmap_png=None),
        heatmap_url="javascript:alert(1)",
        thumbnail_url="//evil.example/t.png",
    )
    parsed = _parse(str(render_imaging_section([served, hostile])))
    sources = [a["src"] for a in _images(parsed)]
    assert sources == [
        "https://pacs.example.org/thumb/2.png",
        "/api/v1/imaging-analyses/an-2/heatmap.png",
    ]
    assert "Heatmap not shown" in _text(parsed)


def test_labels_and_reasons_are_escaped() -> None:
    item = replace(
        items()[2],
        label='<script>alert("x")</script>',
        analysis=replace(items()[2].analysis, reasons=("<b>blank</b>",)),
    )
    html = str(render_imaging_section([item]))
    assert "<script>" not in html
    assert "<b>blank</b>" not in html
    assert "&lt;script&gt;" in html


def test_inline_images_are_limited_per_image_and_per_page() -> None:
    big = TINY_PNG + b"\0" * MAX_INLINE_HEATMAP_BYTES
    over = replace(items()[0], analysis=replace(items()[0].analysis, heatmap_png=big))
    parsed = _parse(str(render_imaging_section([over])))
    # Too big to inline, so the served URL is used instead.
    assert [a["src"] for a in _images(parsed)] == ["/api/v1/imaging-analyses/an-1/heatmap.png"]

    near_limit = TINY_PNG + b"\0" * (MAX_INLINE_HEATMAP_BYTES - len(TINY_PNG))
    count = MAX_INLINE_PAGE_BYTES // len(near_limit) + 2
    many = [
        ImagingItem(analysis("negative", max_probability=0.1, heatmap=near_limit), "Media/1", "X")
        for _ in range(count)
    ]
    parsed = _parse(str(render_imaging_section(many)))
    inline = [a for a in _images(parsed) if (a["src"] or "").startswith("data:")]
    assert len(inline) == MAX_INLINE_PAGE_BYTES // len(near_limit)
    assert _text(parsed).count("Heatmap not shown") == count - len(inline)


def test_model_card_from_bundle_metadata_states_only_what_the_bundle_says() -> None:
    tensor = {
        "type": "image",
        "format": "RGB",
        "num_channels": 3,
        "spatial_shape": [50, 50],
        "dtype": "float32",
        "value_range": [0, 1],
    }
    metadata = BundleMetadata.model_validate(
        {
            "schema": "oncocds-imaging-bundle/1",
            "name": "idc",
            "version": "1",
            "monai_version": "1.4",
            "pytorch_version": "2.5",
            "numpy_version": "2.1",
            "task": "t",
            "description": "d",
            "authors": "a",
            "copyright": "c",
            "intended_use": "Research only.",
            "network_data_format": {"inputs": {"image": tensor}, "outputs": {"pred": tensor}},
            "class_names": ["non-IDC", "IDC"],
            "preprocessing": {"patch_size": 50, "input_range": [0, 255], "output_range": [0, 1]},
            "calibration": {"temperature": 1.5, "threshold": 0.4, "target_sensitivity": 0.9},
            "ood": {
                "mean": [0.1, 0.2],
                "inverse_covariance": [[1, 0], [0, 1]],
                "max_distance": 3,
                "min_tissue_fraction": 0.2,
                "min_laplacian_variance": 5,
            },
            "training_data": {
                "source": "IDC patches",
                "licence": "CC0",
                "patients": {"train": 3, "test": 1},
                "patches": {"train": 40, "test": 10},
                "positives": {"train": 12, "test": 4},
                "duplicates_removed": 0,
                "split": "by patient",
            },
            "eval_metrics": {"test_roc_auc": 0.75},
            "seed": 7,
            "limitations": "Patches only.",
        }
    )
    card = ModelCardSummary.from_bundle_metadata(metadata, url="/card")
    assert card.intended_use == "Research only."
    assert card.training_data == (
        "IDC patches (licence CC0); patients train 3, test 1; patches train 40, test 10; "
        "positives train 12, test 4; split: by patient."
    )
    assert card.limitations == "Patches only."
    assert card.metrics == {"test_roc_auc": 0.75}
    assert card.url == "/card"


# ----------------------------------------------------------------------------- the page


def _page(
    make_settings: Callable[..., Settings], database_url: str, provider: Any
) -> tuple[int, str]:
    settings = make_settings(database_url=database_url, reports={"secret": "imaging-test-s3cret"})
    app = create_app(settings)
    if provider is not None:
        app.state.report_imaging = provider
    try:
        with app.state.sessionmaker.begin() as session:
            analysis_id = store_analysis(
                session, braf_crc_interpretation(), "Patient/p1", "vcf", issued=ISSUED
            ).id
        link = urlsplit(report_link(settings, analysis_id))
        with TestClient(app) as client:
            response = client.get(f"{link.path}?{link.query}")
        return response.status_code, response.text
    finally:
        app.state.engine.dispose()


def test_report_page_includes_the_section_when_results_exist(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    seen: list[str] = []

    def provider(session: Any, analysis_row: Any) -> ImagingSection:
        seen.append(analysis_row.patient_ref)
        return ImagingSection(items=items(), model_card=CARD)

    status, html = _page(make_settings, database_url, provider)
    assert status == 200
    assert seen == ["Patient/p1"]
    parsed = _parse(html)
    assert len(_articles(parsed)) == 3
    assert 'id="imaging-ai-label"' in html
    assert "BRAF" in html  # the genomic report is still there
    assert html.index('id="imaging"') < html.index('id="attribution"')


@pytest.mark.parametrize("provider", [None, lambda s, a: None, lambda s, a: ImagingSection([])])
def test_report_page_has_no_section_without_results(
    make_settings: Callable[..., Settings], database_url: str, provider: Any
) -> None:
    status, html = _page(make_settings, database_url, provider)
    assert status == 200
    assert 'id="imaging"' not in html
    assert "BRAF" in html


def test_a_failing_provider_leaves_the_genomic_report_and_says_unavailable(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    def provider(session: Any, analysis_row: Any) -> ImagingSection:
        raise RuntimeError("storage down: Patient/p1 secret detail")

    status, html = _page(make_settings, database_url, provider)
    assert status == 200
    assert 'id="imaging-unavailable"' in html
    assert "secret detail" not in html
    assert "BRAF" in html


def test_the_model_identity_shown_is_the_analysis_model() -> None:
    other = replace(MODEL, name="idc-other", bundle_sha256="c" * 64)
    mixed = [
        *items(),
        ImagingItem(analysis("negative", max_probability=0.2, model=other), "Media/3", "Y"),
    ]
    text = _text(_parse(str(render_imaging_section(mixed))))
    assert "Model card: idc-resnet18 2026.11.1" in text
    assert "Model card: idc-other 2026.11.1" in text
