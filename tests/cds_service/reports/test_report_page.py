"""The report page: signed expiring links, content, refusals without data, audit."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds_service.analyses.service import store_analysis
from cds_service.errors import AuthenticationError, ForbiddenError, InsecureSettingsError
from cds_service.models import AuditRecord
from cds_service.reports.tokens import (
    report_link,
    report_secret,
    sign_report_token,
    verify_report_token,
)
from cds_service.settings import Settings
from tests.genomics_examples import (
    ISSUED,
    braf_crc_interpretation,
    dpyd_interpretation,
    rich_interpretation,
)

SECRET = "test-report-secret-0123456789abcdef"


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url, reports={"secret": SECRET})


def _store(app: FastAPI, factory=braf_crc_interpretation, patient: str = "Patient/p1") -> str:  # type: ignore[no-untyped-def]
    with app.state.sessionmaker.begin() as session:
        return store_analysis(session, factory(), patient, "vcf", issued=ISSUED).id


def _path(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def test_token_round_trip_and_refusals() -> None:
    secret = b"k" * 32
    token = sign_report_token(secret, "a1", ttl_seconds=60, now=1000)
    assert verify_report_token(secret, "a1", token, now=1059) == 1060
    with pytest.raises(ForbiddenError, match="expired"):
        verify_report_token(secret, "a1", token, now=1060)
    with pytest.raises(ForbiddenError, match="not valid"):
        verify_report_token(secret, "a2", token, now=1000)
    with pytest.raises(ForbiddenError, match="not valid"):
        verify_report_token(b"other" * 8, "a1", token, now=1000)
    expiry, signature = token.split(".")
    with pytest.raises(ForbiddenError):
        verify_report_token(secret, "a1", f"{int(expiry) + 3600}.{signature}", now=1000)
    for bad in (None, "", "nodot", "x.y", "1" * 200):
        with pytest.raises(AuthenticationError):
            verify_report_token(secret, "a1", bad, now=1000)


def test_development_secret_is_generated_once(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(reports={"secret_file": tmp_path / "var" / "report-secret"})
    first = report_secret(settings)
    assert len(first) == 64
    assert report_secret(settings) == first
    assert (tmp_path / "var" / "report-secret").stat().st_mode & 0o077 == 0
    with pytest.raises(InsecureSettingsError):
        report_secret(make_settings(environment="production"))


def test_link_carries_no_phi(app: FastAPI, client: TestClient, settings: Settings) -> None:
    analysis_id = _store(app, patient="Patient/very-identifying-123")
    link = report_link(settings, analysis_id)
    assert link.startswith(f"http://testserver/reports/{analysis_id}?t=")
    assert "very-identifying" not in link
    assert set(parse_qs(urlsplit(link).query)) == {"t"}


def test_page_shows_findings_charts_and_notice(
    app: FastAPI, client: TestClient, settings: Settings
) -> None:
    analysis_id = _store(app)
    response = client.get(_path(report_link(settings, analysis_id)))
    assert response.status_code == 200
    html = response.text
    assert "Decision support, not a diagnosis" in html
    assert "Colorectal Adenocarcinoma (COADREAD)" in html
    assert "encorafenib + cetuximab" in html
    assert "Tier I - Level A" in html
    assert "https://civicdb.org/links/evidence_items/9851" in html
    assert "https://pubmed.ncbi.nlm.nih.gov/31566309/" in html
    assert html.count('class="finding"') == 1
    assert 'id="tier-chart"' in html
    assert 'id="vaf-chart"' in html
    assert "TP53 R273H: not in knowledge base" in html
    assert "31%" in html
    footer = html[html.index('<footer id="attribution"') :]
    assert "OncoTree (release 2025-10-03)" in footer
    assert "CC BY 4.0" in footer
    assert "https://creativecommons.org/licenses/by/4.0/" in footer
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'nonce-" in response.headers["content-security-policy"]


def test_pgx_section(app: FastAPI, client: TestClient, settings: Settings) -> None:
    analysis_id = _store(app, factory=dpyd_interpretation)
    html = client.get(_path(report_link(settings, analysis_id))).text
    assert "DPYD *2A/*2A: Poor Metabolizer, activity score 0" in html
    assert "Avoid use of 5-fluorouracil" in html
    assert "cpicpgx.org/guidelines/guideline-for-fluoropyrimidines-and-dpyd" in html


def test_model_generated_text_is_labelled() -> None:
    from cds_service.reports.pages import render
    from cds_service.reports.view import ReportView

    view = ReportView(
        "a", "2026-11-23", "x", "kb", "0.1.0", "vcf", model_generated=["An LLM wrote this."]
    )
    html = render("report.html", view=view).body.decode()
    label = '<span class="label">Model-generated</span>'
    assert f'<p class="model-generated">{label}An LLM wrote this.</p>' in html


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("garbage", 401), ("9999999999.forged", 403)],
)
def test_bad_token_gets_an_outcome_page_without_data(
    app: FastAPI, client: TestClient, token: str | None, status: int
) -> None:
    analysis_id = _store(app)
    url = f"/reports/{analysis_id}" + (f"?t={token}" if token else "")
    response = client.get(url)
    assert response.status_code == status
    assert 'id="operation-outcome"' in response.text
    assert f'data-status="{status}"' in response.text
    assert "BRAF" not in response.text
    assert "Colorectal" not in response.text


def test_expired_link_is_403(app: FastAPI, client: TestClient, settings: Settings) -> None:
    analysis_id = _store(app)
    old = report_link(
        settings, analysis_id, now=time.time() - settings.reports.token_ttl_seconds - 5
    )
    response = client.get(_path(old))
    assert response.status_code == 403
    assert "expired" in response.text
    assert "BRAF" not in response.text


def test_link_for_one_analysis_does_not_open_another(
    app: FastAPI, client: TestClient, settings: Settings
) -> None:
    first, second = _store(app), _store(app, factory=dpyd_interpretation)
    token = parse_qs(urlsplit(report_link(settings, first)).query)["t"][0]
    assert client.get(f"/reports/{second}?t={token}").status_code == 403


def test_views_and_refusals_are_audited(
    app: FastAPI, client: TestClient, settings: Settings
) -> None:
    analysis_id = _store(app, patient="Patient/p-audit")
    client.get(_path(report_link(settings, analysis_id)))
    client.get(f"/reports/{analysis_id}?t=1.bad")
    with app.state.sessionmaker() as session:
        rows = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.event_type == "report.view")
            .order_by(AuditRecord.seq)
        ).all()
    assert [(r.outcome, r.patient_id) for r in rows] == [(0, "Patient/p-audit"), (4, None)]
    assert all(r.entities == [{"type": "Analysis", "id": analysis_id}] for r in rows)


def test_hereditary_and_diagnostic_rows(
    app: FastAPI, client: TestClient, settings: Settings
) -> None:
    analysis_id = _store(app, factory=rich_interpretation)
    html = client.get(_path(report_link(settings, analysis_id))).text
    assert "BRCA1: pathogenic" in html
    assert "placeholder hereditary condition" in html
    assert html.count('class="finding"') == 2  # the BRAF therapy and the fusion's diagnostic row
    assert "EML4::ALK fusion" in html
    assert 'class="pgx"' in html
    assert "Warning: w1" in html
