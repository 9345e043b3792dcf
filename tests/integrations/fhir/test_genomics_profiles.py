"""The profile checker accepts the IG's example shapes and rejects each broken rule."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from integrations.fhir.genomics_profiles import check_bundle

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "fhir_ig_examples"
EXAMPLE = EXAMPLES / "braf_v600e_crc_stu3.json"
SECOND = EXAMPLES / "germline_pgx_tmb_stu3.json"


def _example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


def test_ig_example_passes() -> None:
    assert check_bundle(_example()) == []


def test_germline_pgx_tmb_example_passes() -> None:
    assert check_bundle(json.loads(SECOND.read_text())) == []


def _entry(doc: dict[str, Any], url: str) -> dict[str, Any]:
    return next(e["resource"] for e in doc["entry"] if e["fullUrl"] == url)


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (
            lambda d: _entry(d, "urn:uuid:gt-dpyd")["code"]["coding"][0].update(code="69548-6"),
            "84413-4",
        ),
        (
            lambda d: _entry(d, "urn:uuid:dx-brca1").update(valueString="x"),
            "must not have value[x]",
        ),
        (
            lambda d: _entry(d, "urn:uuid:tx-dpyd").update(
                derivedFrom=[{"reference": "urn:uuid:rep-2"}]
            ),
            "not a variant/genotype/biomarker",
        ),
        (lambda d: _entry(d, "urn:uuid:tmb-1")["category"].pop(0), "laboratory missing"),
        (
            lambda d: _entry(d, "urn:uuid:dx-brca1")["code"]["coding"][0].update(
                code="therapeutic-implication"
            ),
            "diagnostic-implication",
        ),
    ],
)
def test_broken_second_example_fails(
    breakage: Callable[[dict[str, Any]], None], expected: str
) -> None:
    doc = json.loads(SECOND.read_text())
    breakage(doc)
    problems = check_bundle(doc)
    assert any(expected in p for p in problems), problems


def _drop_ge(doc: dict[str, Any]) -> None:
    doc["entry"][0]["resource"]["category"].pop()


def _value_on_implication(doc: dict[str, Any]) -> None:
    doc["entry"][1]["resource"]["valueString"] = "responsive"


def _no_derived_from(doc: dict[str, Any]) -> None:
    del doc["entry"][1]["resource"]["derivedFrom"]


def _old_report_code(doc: dict[str, Any]) -> None:
    doc["entry"][2]["resource"]["code"]["coding"][0]["code"] = "81247-9"


def _dangling_result(doc: dict[str, Any]) -> None:
    doc["entry"][2]["resource"]["result"].append({"reference": "urn:uuid:nowhere"})


def _interval_without_coordinate_system(doc: dict[str, Any]) -> None:
    comps = doc["entry"][0]["resource"]["component"]
    doc["entry"][0]["resource"]["component"] = [
        c for c in comps if c["code"]["coding"][0]["code"] != "92822-6"
    ]


def _https_loinc(doc: dict[str, Any]) -> None:
    doc["entry"][0]["resource"]["code"]["coding"][0]["system"] = "https://loinc.org"


def _af_not_ucum(doc: dict[str, Any]) -> None:
    for comp in doc["entry"][0]["resource"]["component"]:
        if comp["code"]["coding"][0]["code"] == "81258-6":
            comp["valueQuantity"]["code"] = "%"


def _medication_missing(doc: dict[str, Any]) -> None:
    comps = doc["entry"][1]["resource"]["component"]
    doc["entry"][1]["resource"]["component"] = [
        c for c in comps if c["code"]["coding"][0]["code"] != "51963-7"
    ]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (_drop_ge, "GE missing"),
        (_value_on_implication, "must not have value[x]"),
        (_no_derived_from, "need derivedFrom"),
        (_old_report_code, "51969-4"),
        (_dangling_result, "does not resolve"),
        (_interval_without_coordinate_system, "coordinate-system"),
        (_https_loinc, "69548-6"),
        (_af_not_ucum, "UCUM"),
        (_medication_missing, "51963-7"),
    ],
)
def test_broken_example_fails(breakage: Callable[[dict[str, Any]], None], expected: str) -> None:
    doc = copy.deepcopy(_example())
    breakage(doc)
    problems = check_bundle(doc)
    assert any(expected in p for p in problems), problems
