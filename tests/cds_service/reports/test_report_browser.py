"""The report page in a real browser: Debian chromium driven by Playwright.

The app runs under uvicorn on a free port against a migrated database holding a stored analysis;
chromium loads the signed link, and the test checks the findings table, both SVG charts, the
notice, that the page's Content-Security-Policy let its own script run without violations, the
print stylesheet, and an expired link. A screenshot goes to ``test-artifacts/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from cds_service.analyses.service import store_analysis
from cds_service.app import create_app
from cds_service.reports.tokens import report_link
from cds_service.settings import Settings
from tests.cds_service.writeback.peers import serve
from tests.genomics_examples import ISSUED, braf_crc_interpretation

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


def test_report_renders_in_chromium(
    make_settings: Callable[..., Settings], database_url: str, artifacts_dir: Path
) -> None:
    assert Path(CHROMIUM).is_file(), "Debian chromium is required (make system-deps)"
    settings = make_settings(
        database_url=database_url, reports={"secret": "browser-test-secret-xyz"}
    )
    app = create_app(settings)
    with app.state.sessionmaker.begin() as session:
        analysis_id = store_analysis(
            session, braf_crc_interpretation(), "Patient/p1", "vcf", issued=ISSUED
        ).id
    path_and_query = lambda link: "{0.path}?{0.query}".format(urlsplit(link))  # noqa: E731
    good = path_and_query(report_link(settings, analysis_id))
    expired = path_and_query(
        report_link(
            settings, analysis_id, now=time.time() - settings.reports.token_ttl_seconds - 10
        )
    )
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
                response = page.goto(base + good)
                assert response is not None
                assert response.status == 200

                rows = page.locator("#findings tbody tr")
                assert rows.count() == 1
                cells = rows.nth(0).locator("td").all_inner_texts()
                assert cells[0] == "BRAF"
                assert cells[1] == "V600E"
                assert cells[2] == "31%"
                assert cells[3] == "Tier I - Level A"
                assert "encorafenib + cetuximab" in cells[4]
                links = rows.nth(0).locator("a").evaluate_all("els => els.map(e => e.href)")
                assert "https://civicdb.org/links/evidence_items/9851" in links

                tier_bars = page.locator("#tier-chart rect.tier-bar")
                assert tier_bars.count() == 5
                tier_i = page.locator('#tier-chart rect[data-label="Tier I"]')
                assert tier_i.get_attribute("data-value") == "1"
                assert tier_i.bounding_box()["width"] > 100  # type: ignore[index]
                vaf_bars = page.locator("#vaf-chart rect.vaf-bar")
                assert vaf_bars.count() == 2
                assert page.locator("#disclaimer").is_visible()
                assert (
                    "Decision support, not a diagnosis" in page.locator("#disclaimer").inner_text()
                )
                # The page's own (nonce'd) style applied: the Tier I badge is red, not unstyled.
                badge_colour = page.locator(".badge.tier-i").evaluate(
                    "e => getComputedStyle(e).backgroundColor"
                )
                assert badge_colour == "rgb(179, 38, 30)"
                page.screenshot(path=str(artifacts_dir / "report-braf-crc.png"), full_page=True)

                page.emulate_media(media="print")
                assert not page.locator("#print-report").is_visible()
                page.emulate_media(media="screen")
                assert problems == []

                refused = page.goto(base + expired)
                assert refused is not None
                assert refused.status == 403
                assert page.locator("#operation-outcome").is_visible()
                assert "BRAF" not in page.content()
                page.screenshot(path=str(artifacts_dir / "report-expired-link.png"))
            finally:
                browser.close()
    finally:
        app.state.engine.dispose()
