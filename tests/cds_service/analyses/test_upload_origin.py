"""``?origin=germline`` on an upload (issue 12 §8): the default origin of every variant whose
input states none, for FHIR uploads as for text; a stated origin (48002-0, a line's word) wins."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cds_service.analyses.intake import AnalysisInput, interpret_upload
from cds_service.errors import BadRequestError
from inference.genomics.model import Origin, Variant

LOINC = "http://loinc.org"


def _observation(source_class: str | None) -> dict[str, Any]:
    components: list[dict[str, Any]] = [
        {
            "code": {"coding": [{"system": LOINC, "code": "48018-6"}]},
            "valueCodeableConcept": {
                "coding": [
                    {"system": "http://www.genenames.org", "code": "HGNC:1101", "display": "BRCA2"}
                ]
            },
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "48005-3"}]},
            "valueCodeableConcept": {
                "coding": [{"system": "http://varnomen.hgvs.org", "code": "p.Ser1982ArgfsTer22"}]
            },
        },
    ]
    if source_class is not None:
        components.append(
            {
                "code": {"coding": [{"system": LOINC, "code": "48002-0"}]},
                "valueCodeableConcept": {"coding": [{"system": LOINC, "code": source_class}]},
            }
        )
    return {
        "resourceType": "Observation",
        "id": "brca2",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "69548-6"}]},
        "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA9633-4"}]},
        "component": components,
    }


def _upload(body: object, **fields: str) -> AnalysisInput:
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return AnalysisInput(body=raw, patient="Patient/p1", tumour_type="PRAD", **fields)  # type: ignore[arg-type]


def _origins(result: Any) -> list[Origin]:
    return [a.origin for a in result.interpretation.alterations if isinstance(a, Variant)]


def test_fhir_upload_without_source_class_takes_the_origin_argument() -> None:
    plain = interpret_upload(_upload([_observation(None)], input_format="fhir"))
    assert _origins(plain) == [Origin.UNKNOWN]
    assert plain.interpretation.hereditary == ()
    germline = interpret_upload(
        _upload([_observation(None)], input_format="fhir", origin="germline")
    )
    assert _origins(germline) == [Origin.GERMLINE]
    assert [h.gene.symbol for h in germline.interpretation.hereditary] == ["BRCA2"]


def test_stated_source_class_wins_over_the_origin_argument() -> None:
    result = interpret_upload(
        _upload([_observation("LA6684-0")], input_format="fhir", origin="germline")
    )
    assert _origins(result) == [Origin.SOMATIC]
    assert result.interpretation.hereditary == ()


def test_text_upload_with_origin_germline() -> None:
    result = interpret_upload(
        _upload(b"BRCA2 S1982Rfs*22\nBRCA1 c.68_69delAG\n", input_format="text", origin="germline")
    )
    assert _origins(result) == [Origin.GERMLINE, Origin.GERMLINE]
    # c.68_69delAG is a frameshift (2 bases): loss of function from the c. form alone.
    assert [h.gene.symbol for h in result.interpretation.hereditary] == ["BRCA2", "BRCA1"]


def test_unknown_origin_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError, match="origin must be"):
        interpret_upload(_upload(b"BRAF V600E\n", input_format="text", origin="maternal"))
