"""Tumour types from FHIR Conditions resolve through the same table as the CLI and HL7: the
whole OncoTree with SNOMED CT / ICD-10-CM / ICD-O-3 mappings; the most specific coding wins."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.fhir.clinical_context import (
    patient_context_from_resources,
    tumour_type_from_condition,
)

SCT = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def _condition(*codings: tuple[str, str], text: str | None = None) -> dict[str, Any]:
    code: dict[str, Any] = {"coding": [{"system": s, "code": c} for s, c in codings]}
    if text is not None:
        code["text"] = text
    return {"resourceType": "Condition", "code": code}


@pytest.mark.parametrize(
    ("codings", "expected"),
    [
        (((ICD10CM, "C67.9"),), "BLADDER"),
        (((ICD10CM, "D47.02"),), "SM"),
        (((SCT, "702369008"),), "UCS"),
        (((ICD10CM, "C92.10"),), "CMLBCRABL1"),
        (((SCT, "92814006"),), "CLLSLL"),
        (((ICD10CM, "C49.A2"),), "GIST"),
        (((ICD10CM, "C22.1"),), "IHCH"),
        (((ICD10CM, "C82.07"),), "FL"),
    ],
)
def test_condition_codes_for_common_cancers(
    codings: tuple[tuple[str, str], ...], expected: str
) -> None:
    found = tumour_type_from_condition(_condition(*codings))
    assert found is not None
    assert found.code == expected


def test_the_most_specific_coding_wins_whatever_its_order() -> None:
    lung, nsclc = (ICD10CM, "C34.90"), (SCT, "254637007")
    for codings in ((lung, nsclc), (nsclc, lung)):
        found = tumour_type_from_condition(_condition(*codings))
        assert found is not None
        assert found.code == "NSCLC"


def test_unknown_codes_fall_back_to_the_text_then_to_nothing() -> None:
    found = tumour_type_from_condition(_condition((SCT, "1"), text="uterine carcinosarcoma"))
    assert found is not None
    assert found.code == "UCS"
    assert tumour_type_from_condition(_condition((SCT, "1"), text="something else")) is None


def test_unmapped_condition_is_reported_not_guessed() -> None:
    result = patient_context_from_resources(
        [_condition((SCT, "1")), _condition((ICD10CM, "D47.02"))]
    )
    assert result.context.tumour_type is not None
    assert result.context.tumour_type.code == "SM"
    assert result.unmapped_conditions == [f"{SCT}|1"]
