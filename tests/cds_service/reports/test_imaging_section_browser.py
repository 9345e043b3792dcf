"""The report page's imaging section in a real browser: Debian chromium driven by Playwright.

The app runs under uvicorn on a free port against a migrated database holding a stored genomic
analysis; chromium loads the signed report link. Two things stand in for the imaging service,
which is built elsewhere: ``app.state.report_imaging`` returns fixed analyses (invented numbers,
no model runs, no accuracy claim), and one test route serves a heatmap PNG the way the imaging
service will (same origin). The images are drawn at test time from scikit-image's
immunohistochemistry sample. The test checks that both heatmaps (inline and served) load, that
the AI label is visible on screen and in print, the outcomes, and that the page's
Content-Security-Policy raised no violation. A screenshot goes to ``test-artifacts/``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from fastapi import Response
from PIL import Image
from playwright.sync_api import sync_playwright
from skimage import data

from cds_service.analyses.service import store_analysis
from cds_service.app import create_app
from cds_service.reports.imaging import ImagingSection, ModelCardSummary
from cds_service.reports.tokens import report_link
from cds_service.settings import Settings
from tests.cds_service.reports.test_report_browser import CHROMIUM, FLAGS
from tests.cds_service.writeback.peers import serve
from tests.genomics_examples import ISSUED, braf_crc_interpretation
from tests.integrations.fhir.imaging_examples import items

pytestmark = pytest.mark.browser

SERVED_HEATMAP = "/test-imaging/heatmap-1.png"


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def _pictures() -> tuple[bytes, bytes, bytes]:
    """A thumbnail and two heatmaps (a probability ramp blended over the thumbnail)."""
    tissue = np.asarray(data.immunohistochemistry())[::2, ::2]  # type: ignore[no-untyped-call]
    ramp = np.linspace(0.0, 1.0, tissue.shape[1])[None, :, None]
    colour = np.concatenate([ramp, np.zeros_like(ramp), 1 - ramp], axis=2) * 255
    heat = (0.55 * tissue + 0.45 * colour).astype(np.uint8)
    return _png(tissue), _png(heat), _png(heat[:, ::-1].copy())


def test_imaging_section_renders_in_chromium(
    make_settings: Callable[..., Settings], database_url: str, artifacts_dir: Path
) -> None:
    assert Path(CHROMIUM).is_file(), "Debian chromium is required (make system-deps)"
    thumbnail, served_heatmap, inline_heatmap = _pictures()
    positive, negative, indeterminate = items()
    shown = [
        # the heatmap from the served URL (no bytes at hand), with an inline thumbnail
        replace(
            positive,
            analysis=replace(positive.analysis, heatmap_png=None),
            heatmap_url=SERVED_HEATMAP,
            thumbnail_png=thumbnail,
        ),
        # the heatmap inline (data: URI)
        replace(negative, analysis=replace(negative.analysis, heatmap_png=inline_heatmap)),
        indeterminate,
    ]
    card = ModelCardSummary(intended_use="Research use only (test).", url="/models/card")

    settings = make_settings(
        database_url=database_url, reports={"secret": "browser-imaging-secret-xyz"}
    )
    app = create_app(settings)
    app.state.report_imaging = lambda session, analysis: ImagingSection(shown, card)
    served: list[str] = []

    def heatmap() -> Response:
        served.append(SERVED_HEATMAP)
        return Response(served_heatmap, media_type="image/png")

    app.add_api_route(SERVED_HEATMAP, heatmap, methods=["GET"], include_in_schema=False)
    with app.state.sessionmaker.begin() as session:
        analysis_id = store_analysis(
            session, braf_crc_interpretation(), "Patient/p1", "vcf", issued=ISSUED
        ).id
    link = urlsplit(report_link(settings, analysis_id))
    try:
        with serve(app) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                problems: list[str] = []
                page.on(
                    "console",
                    lambda msg: problems.append(msg.text) if msg.type == "error" else None,
                )
                page.on("pageerror", lambda exc: problems.append(str(exc)))
                response = page.goto(f"{base}{link.path}?{link.query}")
                assert response is not None
                assert response.status == 200

                section = page.locator("#imaging")
                section.scroll_into_view_if_needed()
                label = page.locator("#imaging-ai-label")
                assert label.is_visible()
                assert "AI-generated; requires pathologist review" in label.inner_text()

                heatmaps = page.locator("#imaging img.heatmap")
                assert heatmaps.count() == 2
                for index in range(2):
                    img = heatmaps.nth(index)
                    img.scroll_into_view_if_needed()
                    # Loaded and decoded: a broken image has naturalWidth 0.
                    page.wait_for_function(
                        "e => e.complete && e.naturalWidth > 0", arg=img.element_handle()
                    )
                    assert img.evaluate("e => e.naturalWidth") == 256
                    assert img.is_visible()
                assert heatmaps.nth(0).get_attribute("src") == SERVED_HEATMAP
                assert (heatmaps.nth(1).get_attribute("src") or "").startswith("data:image/png")
                assert served == [SERVED_HEATMAP]
                thumb = page.locator("#imaging .imaging-thumbnail img")
                assert thumb.evaluate("e => e.naturalWidth") == 256

                badges = page.locator("#imaging .outcome-badge").all_inner_texts()
                assert badges == ["Positive", "Negative", "Indeterminate"]
                assert "blurred, not H&E-like" in page.locator("#imaging-image-3").inner_text()
                first = page.locator("#imaging-image-1")
                assert first.get_attribute("data-probability") == "0.93"
                assert "threshold 0.50" in first.inner_text()
                card_text = page.locator("#model-card-1").inner_text()
                assert "idc-resnet18 2026.11.1" in card_text
                assert "a" * 64 in card_text
                # The page's own nonce'd style applied to the section: the positive badge is red.
                colour = page.locator("#imaging-image-1 .outcome-badge").evaluate(
                    "e => getComputedStyle(e).backgroundColor"
                )
                assert colour == "rgb(179, 38, 30)"

                page.screenshot(
                    path=str(artifacts_dir / "report-imaging-section.png"), full_page=True
                )
                section.screenshot(path=str(artifacts_dir / "report-imaging-section-only.png"))
                page.emulate_media(media="print")
                assert label.is_visible()
                page.emulate_media(media="screen")
                assert problems == []
            finally:
                browser.close()
    finally:
        app.state.engine.dispose()
