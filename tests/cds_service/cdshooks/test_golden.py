"""Golden request → response files for each hook shape (tests/data/cdshooks/), compared as parsed
JSON with generated uuids matched as "any UUID"; a wrong card fails the comparison."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cds_service.cdshooks.conftest import CdsClient
from tests.support import golden

DATA = Path(__file__).resolve().parents[2] / "data" / "cdshooks"
NAMES = sorted(p.name.removesuffix(".request.json") for p in DATA.glob("*.request.json"))


def normalise(value: Any) -> Any:
    """Replace every ``uuid`` member that holds a valid UUID by ``"<uuid>"``.

    Anything else under a ``uuid`` key stays, so a missing or malformed uuid still differs.
    """
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key == "uuid" and isinstance(item, str) and _is_uuid(item):
                result[key] = "<uuid>"
            else:
                result[key] = normalise(item)
        return result
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def matches_golden(actual: Any, expected: Any) -> bool:
    """Compare as parsed JSON, uuids as "any UUID" (tests/support/golden.py)."""
    return golden.same_json(golden.as_json(normalise(actual)), expected)


def _load(name: str) -> tuple[str, dict[str, Any], Any]:
    request = json.loads((DATA / f"{name}.request.json").read_text())
    service = request.pop("_service")
    expected = json.loads((DATA / f"{name}.response.json").read_text())
    return service, request, expected


def test_every_hook_shape_has_a_golden() -> None:
    hooks = {json.loads((DATA / f"{n}.request.json").read_text())["hook"] for n in NAMES}
    assert {"patient-view", "order-select", "order-sign", "encounter-discharge"} <= hooks


@pytest.mark.parametrize("name", NAMES)
def test_response_matches_golden(cds: CdsClient, name: str) -> None:
    service, request, expected = _load(name)
    response = cds.call(service, request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    # ONCOCDS_REGENERATE_GOLDEN=1 rewrites the file and fails the test (review the diff).
    golden.assert_matches_golden(
        response.json(), DATA / f"{name}.response.json", normalise=normalise, sort_keys=False
    )
    assert matches_golden(response.json(), expected), json.dumps(response.json(), indent=1)


def test_uuids_are_fresh_and_distinct(cds: CdsClient) -> None:
    service, request, _ = _load("order-sign")
    first = cds.call(service, request).json()
    request["hookInstance"] = str(uuid.uuid4())
    second = cds.call(service, request).json()
    ids = [first["cards"][0]["uuid"], second["cards"][0]["uuid"]]
    ids += [s["uuid"] for s in first["cards"][0]["suggestions"]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r["cards"][0].__setitem__("summary", "Something else"),
        lambda r: r["cards"][0].__setitem__("indicator", "warning"),
        lambda r: r["cards"][0]["suggestions"].pop(),
        lambda r: r["cards"][0].__setitem__("uuid", "not-a-uuid"),
        lambda r: r["cards"][0].pop("uuid"),
        lambda r: r["cards"][0].__setitem__("detail", None),
        lambda r: r.pop("systemActions"),
    ],
    ids=["summary", "indicator", "suggestion", "bad-uuid", "no-uuid", "null-detail", "no-sysact"],
)
def test_a_wrong_card_fails_the_comparison(cds: CdsClient, mutate: Any) -> None:
    service, request, expected = _load("order-sign")
    actual = cds.call(service, request).json()
    assert matches_golden(actual, expected)
    wrong = copy.deepcopy(actual)
    mutate(wrong)
    assert not matches_golden(wrong, expected)
