"""Golden responses of the real genomic services on clinical scenarios.

Each folder of ``tests/data/cdshooks/scenarios/`` holds a signed call's body (``request.json``,
its ``_service`` member naming the service and removed before sending) and the whole response
expected from ``oncology-genomics``, ``targeted-therapy-check`` or
``targeted-therapy-check-select`` (``golden.json``), compared as parsed JSON with only the
volatile members normalised (``tests/support/cards_golden.py``). The scenarios and their sources
are listed in the folder's README. Regenerate on purpose with ``ONCOCDS_REGENERATE_GOLDEN=1``
(the run then fails), and review the diff.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cds_service.cdshooks.services import BUILTIN_SERVICES
from tests.cds_service.cdshooks.conftest import CdsClient
from tests.support.cards_golden import (
    REPORT_LINK_MARK,
    check_golden,
    differences,
    matches_golden,
    normalise,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "cdshooks" / "scenarios"
NAMES = sorted(p.parent.name for p in SCENARIOS.glob("*/request.json"))
REAL_SERVICES = {"oncology-genomics", "targeted-therapy-check", "targeted-therapy-check-select"}


@pytest.fixture
def real_cds(make_cds_client: Callable[..., CdsClient], sqlite_url: str) -> CdsClient:
    return make_cds_client(services=BUILTIN_SERVICES, database_url=sqlite_url)


def _request(name: str) -> tuple[str, dict[str, Any]]:
    body = json.loads((SCENARIOS / name / "request.json").read_text())
    return body.pop("_service"), body


def _call(cds: CdsClient, name: str) -> Any:
    service, body = _request(name)
    response = cds.call(service, body)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_scenarios_cover_every_real_service_and_the_empty_answer() -> None:
    services = {_request(n)[0] for n in NAMES}
    assert services == REAL_SERVICES
    empty = [
        n for n in NAMES if json.loads((SCENARIOS / n / "golden.json").read_text()) == {"cards": []}
    ]
    assert "no-actionable-finding" in empty
    assert "normal-metabolizer-patient-view" in empty


@pytest.mark.parametrize("name", NAMES)
def test_scenario_matches_golden(real_cds: CdsClient, name: str) -> None:
    check_golden(
        SCENARIOS / name / "golden.json", _call(real_cds, name), base_url=real_cds.settings.base_url
    )


def _card_with(response: dict[str, Any], member: str) -> dict[str, Any]:
    return next(c for c in response["cards"] if c.get(member))


MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "summary": lambda r: r["cards"][0].__setitem__("summary", r["cards"][0]["summary"] + "."),
    "indicator": lambda r: r["cards"][0].__setitem__("indicator", "info"),
    "detail": lambda r: r["cards"][0].__setitem__(
        "detail", r["cards"][0]["detail"].replace("DPYD", "TPMT", 1)
    ),
    "card-dropped": lambda r: r["cards"].pop(),
    "card-order": lambda r: r["cards"].reverse(),
    "suggestion-dropped": lambda r: _card_with(r, "suggestions")["suggestions"].pop(),
    "suggestion-label": lambda r: _card_with(r, "suggestions")["suggestions"][0].__setitem__(
        "label", "Order something else"
    ),
    "suggestion-action": lambda r: _card_with(r, "suggestions")["suggestions"][0]["actions"][0][
        "resource"
    ].__setitem__("status", "active"),
    "link-label": lambda r: _card_with(r, "links")["links"][0].__setitem__("label", "Open"),
    "link-elsewhere": lambda r: _card_with(r, "links")["links"][0].__setitem__(
        "url", "https://elsewhere.example/reports/x?t=y"
    ),
    "override-reason": lambda r: r["cards"][0]["overrideReasons"].pop(),
    "card-kind": lambda r: r["cards"][0]["source"]["topic"].__setitem__("code", "other"),
    "bad-uuid": lambda r: r["cards"][0].__setitem__("uuid", "not-a-uuid"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_wrong_card_fails_the_comparison(real_cds: CdsClient, mutation: str) -> None:
    """The issue-12 demo patient's cards, mutated one way each, no longer match their golden."""
    name = "issue12-demo-patient-view"
    expected = json.loads((SCENARIOS / name / "golden.json").read_text())
    actual = _call(real_cds, name)
    base = real_cds.settings.base_url
    assert matches_golden(actual, expected, base_url=base)
    wrong = copy.deepcopy(actual)
    MUTATIONS[mutation](wrong)
    assert wrong != actual
    assert not matches_golden(wrong, expected, base_url=base)


def test_a_card_where_none_belongs_fails_the_empty_golden(real_cds: CdsClient) -> None:
    expected = json.loads((SCENARIOS / "no-actionable-finding" / "golden.json").read_text())
    stray = _call(real_cds, "issue12-demo-patient-view")["cards"][0]
    base = real_cds.settings.base_url
    assert not matches_golden({"cards": [stray]}, expected, base_url=base)


def test_normalisation_masks_only_what_varies() -> None:
    base = "http://testserver"
    response = {
        "cards": [
            {
                "uuid": "6f1c1c55-8d0e-4c4e-9f59-3c1b1f0b8d11",
                "summary": "s",
                "links": [
                    {"label": "r", "url": f"{base}/reports/abc?t=tok", "type": "absolute"},
                    {"label": "x", "url": "https://civicdb.org/evidence/1", "type": "absolute"},
                ],
            }
        ]
    }
    normalised = normalise(response, base_url=base)
    card = normalised["cards"][0]
    assert card["uuid"] == "<uuid>"
    assert card["links"][0]["url"] == REPORT_LINK_MARK
    assert card["links"][1]["url"] == "https://civicdb.org/evidence/1"
    assert normalise({"uuid": "123"}, base_url=base) == {"uuid": "123"}
    assert differences({"a": True}, {"a": 1}) == ["$.a: expected 1, got true"]


def test_regenerate_mode_writes_the_file_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden = tmp_path / "golden.json"
    monkeypatch.setenv("ONCOCDS_REGENERATE_GOLDEN", "1")
    with pytest.raises(pytest.fail.Exception, match="ONCOCDS_REGENERATE_GOLDEN"):
        check_golden(golden, {"cards": []}, base_url="http://testserver")
    assert json.loads(golden.read_text()) == {"cards": []}
    monkeypatch.delenv("ONCOCDS_REGENERATE_GOLDEN")
    check_golden(golden, {"cards": []}, base_url="http://testserver")
    with pytest.raises(AssertionError, match="differs"):
        check_golden(golden, {"cards": [{"summary": "x"}]}, base_url="http://testserver")
