"""The explanation input, the grounding checker and the template (issue 16 items 1 and 3).

Expected entities are written out here by hand; none is computed by the checker under test.
"""

from __future__ import annotations

from typing import Any

import pytest

from inference.genomics import PatientContext, interpret, resolve_tumour_type
from inference.genomics.model import Gene, Origin, Variant
from inference.llm import (
    GenomicExplanation,
    HistopathologyExplanation,
    check_grounding,
    genomic_input,
    histopathology_input,
    template_explanation,
)
from inference.llm.schemas import json_schema
from tests.genomics_examples import braf_crc_interpretation, dpyd_interpretation
from tests.integrations.fhir.imaging_examples import analysis as image_analysis

PATIENT_PARAGRAPH = {"finding_id": "F1", "text": "A change was found in the tumour."}


def _genomic(summary: str, paragraphs: list[dict[str, str]] | None = None) -> GenomicExplanation:
    return GenomicExplanation(
        clinician_summary=summary,
        patient_paragraphs=[PATIENT_PARAGRAPH] if paragraphs is None else paragraphs,
    )


def test_input_holds_findings_and_no_identifier_or_date() -> None:
    source = genomic_input(braf_crc_interpretation())
    text = source.text
    assert source.finding_ids == ("F1",)
    finding = source.document["findings"][0]
    assert finding["alteration"] == "BRAF V600E"
    assert finding["tier"] == "Tier I - Level A"
    assert finding["therapies"][0]["drugs"] == ["encorafenib", "cetuximab"]
    assert source.document["alterations_not_in_knowledge_base"] == 1
    # The variant's source reference, position, evidence ids/URLs and the KB version stay out.
    for leaked in ("T001-COAD.vcf:57", "140753336", "EID9851", "civicdb.org", "2026", "NDA"):
        assert leaked not in text, leaked


def test_input_hash_changes_with_the_findings() -> None:
    one = genomic_input(braf_crc_interpretation())
    other = genomic_input(braf_crc_interpretation(variant=None))
    assert one.input_hash == other.input_hash  # same findings, same hash
    assert genomic_input(dpyd_interpretation()).input_hash != one.input_hash


@pytest.mark.parametrize(
    ("summary", "problem"),
    [
        # The earlier tool's failure: KRAS G12D → sotorasib, in a BRAF V600E report.
        (
            "KRAS G12D responds to sotorasib.",
            {
                "gene not in the findings: KRAS",
                "variant not in the findings: G12D",
                "drug not in the findings: sotorasib",
            },
        ),
        ("BRAF V600E responds to Lumakras.", {"drug not in the findings: sotorasib"}),
        ("BRAF V600E; consider dabrafenib.", {"drug not in the findings: dabrafenib"}),
        ("A new agent, zelpotinib, may help.", {"drug not in the findings: zelpotinib"}),
        ("BRAF V600E and ZNF9999 were found.", {"gene not in the findings: ZNF9999"}),
        ("BRAF V600E is a Tier II finding.", {"tier not in the findings: II"}),
        ("BRAF V600E is tier 3.", {"tier not in the findings: III"}),
        ("BRAF V600E, evidence level B.", {"evidence level not in the findings: B"}),
        ("BRAF V600E at 45% allele fraction.", {"number not in the findings: 45"}),
        ("Response rate 26% with encorafenib.", {"number not in the findings: 26"}),
        ("BRAF p.Val600Lys was found.", {"variant not in the findings: V600K"}),
    ],
)
def test_ungrounded_entities_fail_the_text(summary: str, problem: set[str]) -> None:
    result = check_grounding(_genomic(summary), genomic_input(braf_crc_interpretation()))
    assert not result.ok
    assert set(result.problems) == problem


@pytest.mark.parametrize(
    "summary",
    [
        "BRAF V600E (Tier I - Level A): sensitive to encorafenib with cetuximab.",
        "BRAF p.Val600Glu responds to Braftovi plus Erbitux.",  # 3-letter form, brand names
        "The variant allele fraction was 31% (0.31).",  # 0.31 as a percentage, rounded
        "One alteration was not in the knowledge base: 1.",
        "The evidence is in Colorectal Cancer.",
    ],
)
def test_grounded_texts_pass(summary: str) -> None:
    result = check_grounding(_genomic(summary), genomic_input(braf_crc_interpretation()))
    assert result.ok, result.problems


def test_patient_paragraphs_must_be_one_per_finding() -> None:
    source = genomic_input(braf_crc_interpretation())
    assert not check_grounding(_genomic("BRAF V600E.", []), source).ok
    twice = [PATIENT_PARAGRAPH, PATIENT_PARAGRAPH]
    assert not check_grounding(_genomic("BRAF V600E.", twice), source).ok
    other = [{"finding_id": "F2", "text": "x"}]
    assert not check_grounding(_genomic("BRAF V600E.", other), source).ok


def test_template_is_grounded_and_names_the_findings() -> None:
    source = genomic_input(braf_crc_interpretation())
    template = template_explanation(source)
    assert isinstance(template, GenomicExplanation)
    assert "BRAF V600E (Tier I - Level A)" in template.clinician_summary
    assert "encorafenib + cetuximab" in template.clinician_summary
    assert [p.finding_id for p in template.patient_paragraphs] == ["F1"]
    assert check_grounding(template, source).ok


def test_pharmacogenomic_template_is_grounded() -> None:
    source = genomic_input(dpyd_interpretation())
    template = template_explanation(source)
    assert isinstance(template, GenomicExplanation)
    assert "DPYD *2A/*2A" in template.clinician_summary
    assert check_grounding(template, source).ok
    # A DPYD paragraph that invents a dose figure fails.
    bad = _genomic("DPYD *2A/*2A: give 50% of the capecitabine dose.", [PATIENT_PARAGRAPH])
    assert "number not in the findings: 50" in check_grounding(bad, source).problems


def test_real_interpretations_give_grounded_templates() -> None:
    """The interpreter's own output (KB 'drugs', labels, notes) through input and template."""
    cases = [
        ("LUAD", [("EGFR", "L858R"), ("EGFR", "T790M")]),
        ("NSCLC", [("KRAS", "G12C")]),
        ("MEL", [("BRAF", "V600E"), ("NRAS", "Q61K")]),
        ("BRCA", [("PIK3CA", "H1047R"), ("ERBB2", "S310F")]),
    ]
    for code, variants in cases:
        alterations = [
            Variant(gene=Gene(g), protein_change=p, origin=Origin.SOMATIC) for g, p in variants
        ]
        context = PatientContext(tumour_type=resolve_tumour_type(code))
        source = genomic_input(interpret(alterations, context))
        assert source.finding_ids, code
        result = check_grounding(template_explanation(source), source)
        assert result.ok, (code, result.problems)


def test_histopathology_input_and_template() -> None:
    image = image_analysis(
        "positive", max_probability=0.97, positive_fraction=0.125, mean_probability=0.41
    )
    source = histopathology_input(image)
    assert source.document["positive_area_percent"] == 12.5
    assert source.document["highest_tile_probability_percent"] == 97.0
    assert "a" * 64 not in source.text  # the bundle hash stays out
    template = template_explanation(source)
    assert isinstance(template, HistopathologyExplanation)
    assert "Positive area 12.5%" in template.findings
    assert check_grounding(template, source).ok
    invented = HistopathologyExplanation(
        findings="Positive area 40% of the tissue; consistent with carcinoma, start trastuzumab.",
        interpretation="x",
        next_steps=["Review."],
    )
    assert set(check_grounding(invented, source).problems) == {
        "number not in the findings: 40",
        "drug not in the findings: trastuzumab",
    }


def _walk(schema: Any, defs: dict[str, Any], seen: list[str]) -> None:
    if isinstance(schema, dict):
        if "$ref" in schema:
            _walk(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, seen)
            return
        kind = schema.get("type")
        if kind == "string":
            assert "maxLength" in schema or "pattern" in schema, schema
            seen.append("string")
        if kind == "array":
            assert "maxItems" in schema, schema
            seen.append("array")
        for key in ("properties",):
            for value in schema.get(key, {}).values():
                _walk(value, defs, seen)
        if "items" in schema:
            _walk(schema["items"], defs, seen)


@pytest.mark.parametrize("kind", ["genomic", "histopathology"])
def test_every_string_and_array_of_the_schema_is_bounded(kind: str) -> None:
    schema = json_schema(kind)  # type: ignore[arg-type]
    seen: list[str] = []
    _walk(schema, schema.get("$defs", {}), seen)
    assert "string" in seen
    assert "array" in seen
    assert schema.get("additionalProperties") is False
