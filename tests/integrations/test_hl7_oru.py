"""ORU^R01 genetic results → domain variants, patient identity and per-record problems.

Expected values are written by hand from the test messages (tests/data/hl7/README.md), not
computed by the reader.
"""

from __future__ import annotations

import dataclasses

import pytest

from inference.genomics.model import Gene, GenomeBuild, GenomicPosition, Origin, Variant
from integrations.hl7v2.errors import Hl7ParseError
from integrations.hl7v2.oru import PatientIdentifier, read_genetic_results
from tests.hl7_support import data_file

BRAF = Variant(
    gene=Gene("BRAF", "HGNC:1097"),
    hgvs_c="NM_004333.6:c.1799T>A",
    hgvs_p="NP_004324.2:p.Val600Glu",
    transcript="NM_004333.6",
    protein_change="V600E",
    position=GenomicPosition(GenomeBuild.GRCH38, "7", 140753336, "A", "T"),
    origin=Origin.SOMATIC,
    allele_frequency=0.31,
    source_ref="OBR 1 OBX-4 2a",
)
PIK3CA = Variant(
    gene=Gene("PIK3CA", "HGNC:8975"),
    hgvs_c="NM_006218.4:c.3140A>G",
    hgvs_p="NP_006209.2:p.His1047Arg",
    transcript="NM_006218.4",
    protein_change="H1047R",
    position=GenomicPosition(GenomeBuild.GRCH38, "3", 179234297, "A", "G"),
    origin=Origin.SOMATIC,
    allele_frequency=0.42,
    source_ref="OBR 1 OBX-4 2b",
)


def _text(name: str) -> str:
    return data_file(name).decode("utf-8")


def test_braf_message() -> None:
    result = read_genetic_results(_text("oru_r01_braf_v600e.hl7"))
    assert result.intake.alterations == [BRAF]
    assert result.intake.problems == []
    assert result.intake.records_read == 1
    assert result.patient == PatientIdentifier(
        value="MRN12345",
        assigning_authority="EXAMPLE_HOSP",
        authority_universal_id="2.16.840.1.113883.19.5",
        authority_universal_id_type="ISO",
        type_code="MR",
    )


def test_two_variants_grouped_by_obx4_sub_id() -> None:
    result = read_genetic_results(_text("oru_r01_braf_pik3ca.hl7"))
    assert result.intake.alterations == [BRAF, PIK3CA]


def test_comparison_detects_a_wrong_reading() -> None:
    result = read_genetic_results(_text("oru_r01_pik3ca_h1047r.hl7"))
    wrong = dataclasses.replace(PIK3CA, source_ref="OBR 1 OBX-4 2a", allele_frequency=0.24)
    assert result.intake.alterations != [wrong]
    expected = dataclasses.replace(PIK3CA, source_ref="OBR 1 OBX-4 2a")
    assert result.intake.alterations == [expected]


def _replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


def test_bad_group_is_a_problem_and_the_others_are_kept() -> None:
    text = _text("oru_r01_braf_pik3ca.hl7")
    # The BRAF group's VAF becomes 31 (a percentage): that group is unreadable, PIK3CA is kept.
    text = _replace(text, "|2a|0.31|", "|2a|31|")
    result = read_genetic_results(text)
    assert result.intake.alterations == [PIK3CA]
    assert [(p.location, p.reason) for p in result.intake.problems] == [
        ("OBR 1 OBX-4 2a", "81258-6 allelic frequency is outside 0..1")
    ]


def test_coordinates_without_assembly_keep_the_variant_without_position() -> None:
    text = _replace(
        _text("oru_r01_braf_v600e.hl7"),
        "OBX|1|CWE|62374-4^Human reference sequence assembly version^LN|1|"
        "LA26806-2^GRCh38^LN||||||F\r",
        "",
    )
    result = read_genetic_results(text)
    (variant,) = result.intake.alterations
    assert variant.position is None
    assert variant.protein_change == "V600E"
    assert "62374-4" in result.intake.problems[0].reason


def test_absent_variant_is_not_reported() -> None:
    text = _replace(_text("oru_r01_braf_v600e.hl7"), "LA9633-4^Present", "LA9634-2^Absent")
    result = read_genetic_results(text)
    assert result.intake.alterations == []
    assert result.intake.problems == []


def test_local_obr4_code_with_variant_rows_is_read() -> None:
    text = _replace(
        _text("oru_r01_braf_v600e.hl7"),
        "81247-9^Master HL7 genetic variant reporting panel^LN",
        "NGS50^Solid tumour panel^L",
    )
    assert read_genetic_results(text).intake.alterations == [BRAF]


def test_non_genetic_oru_yields_nothing() -> None:
    text = (
        "MSH|^~\\&|A|B|C|D|2026||ORU^R01^ORU_R01|X1|P|2.5.1\r"
        "PID|1||P1^^^H^MR\rOBR|1|O1|F1|2345-7^Glucose^LN\rOBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L\r"
    )
    result = read_genetic_results(text)
    assert result.genetic_orders == []
    assert result.intake.alterations == []


def test_unsupported_version_is_a_parse_error() -> None:
    with pytest.raises(Hl7ParseError) as info:
        read_genetic_results("MSH|^~\\&|A|B|C|D|2026||ORU^R01|X1|P|9.9\rPID|1\r")
    assert info.value.location == "MSH^1^12"


def test_missing_pid_and_obx_before_obr_are_problems() -> None:
    text = (
        "MSH|^~\\&|A|B|C|D|2026||ORU^R01^ORU_R01|X1|P|2.5.1\r"
        "OBX|1|CWE|48018-6^Gene studied^LN|2a|HGNC:1097^BRAF^HGNC\r"
    )
    result = read_genetic_results(text)
    assert [p.location for p in result.intake.problems] == ["OBX before OBR", "PID-3"]
    assert result.intake.alterations == [
        Variant(gene=Gene("BRAF", "HGNC:1097"), source_ref="OBR ? OBX-4 2a")
    ]
