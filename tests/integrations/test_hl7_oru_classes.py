"""ORU^R01 OBX results carrying the classes text lists carry (issue 12 §4), germline origin
(§8) and the RefSeq accession checked against the assembly (issue 13 §4). Messages are the BRAF
test message with rows edited by hand; expected values are written by hand."""

from __future__ import annotations

import pytest

from inference.genomics.model import (
    Biomarker,
    BiomarkerKind,
    Gene,
    Origin,
    Significance,
    Variant,
    VariantClass,
)
from integrations.hl7v2.oru import read_genetic_results
from tests.hl7_support import data_file

HEAD = (
    "MSH|^~\\&|MOLPATH_LIS|EXAMPLE_LAB|ONCOCDS|EXAMPLE_HOSP|20260115093000||ORU^R01^ORU_R01|"
    "LAB0000009|P|2.5.1||||||UNICODE UTF-8\r"
    "PID|1||MRN12345^^^EXAMPLE_HOSP&2.16.840.1.113883.19.5&ISO^MR||TESTPATIENT^ONE||19620315|F\r"
    "OBR|1|ORD778|GEN778|81247-9^Master HL7 genetic variant reporting panel^LN|||20260110\r"
    "OBX|1|CWE|62374-4^Human reference sequence assembly version^LN|1|LA26806-2^GRCh38^LN\r"
)


def _message(*rows: str) -> str:
    return HEAD + "".join(f"OBX|{n}|{row}\r" for n, row in enumerate(rows, start=2))


def _braf() -> str:
    return data_file("oru_r01_braf_v600e.hl7").decode("utf-8")


def test_accession_of_the_other_build_is_a_problem_and_the_variant_is_not_read() -> None:
    text = _braf().replace("|2a|NC_000007.14|", "|2a|NC_000007.13|")
    result = read_genetic_results(text)
    assert result.intake.alterations == []
    (problem,) = result.intake.problems
    assert problem.location == "OBR 1 OBX-4 2a"
    assert "assembly GRCh38 contradicts RefSeq NC_000007.13 (GRCh37)" in problem.reason


def test_accession_of_no_known_build_is_a_problem() -> None:
    text = _braf().replace("|2a|NC_000007.14|", "|2a|NC_000007.12|")
    result = read_genetic_results(text)
    assert result.intake.alterations == []
    assert "not a GRCh37 or GRCh38 chromosome accession" in result.intake.problems[0].reason


def test_accession_of_the_stated_build_is_read() -> None:
    (variant,) = read_genetic_results(_braf()).intake.alterations
    assert variant.position is not None
    assert (variant.position.chrom, variant.position.build.value) == ("7", "GRCh38")


def test_fusion_from_change_type_and_two_genes() -> None:
    text = _message(
        "CWE|48018-6^Gene studied^LN|2a|HGNC:3205^EML4^HGNC",
        "CWE|48018-6^Gene studied^LN|2a|HGNC:427^ALK^HGNC",
        "CWE|48019-4^DNA change type^LN|2a|SO:0001565^gene_fusion^SO",
        "CWE|83005-9^Variant category^LN|2a|LA26802-1^Structural variant^LN",
    )
    result = read_genetic_results(text)
    assert result.intake.alterations == [
        Biomarker(
            kind=BiomarkerKind.FUSION,
            gene=Gene("ALK", "HGNC:427"),
            fusion_partner=Gene("EML4", "HGNC:3205"),
            origin=Origin.SOMATIC,
            source_ref="OBR 1 OBX-4 2a",
        )
    ]


@pytest.mark.parametrize(
    ("so", "kind"),
    [
        ("SO:0001742^copy_number_gain", BiomarkerKind.AMPLIFICATION),
        ("SO:0001743^copy_number_loss", BiomarkerKind.DELETION),
    ],
)
def test_copy_number_from_change_type(so: str, kind: BiomarkerKind) -> None:
    text = _message(
        "CWE|48018-6^Gene studied^LN|3a|HGNC:3430^ERBB2^HGNC",
        f"CWE|48019-4^DNA change type^LN|3a|{so}^SO",
        "NM|82155-3^Genomic structural variant copy number^LN|3a|12",
    )
    (biomarker,) = read_genetic_results(text).intake.alterations
    assert biomarker == Biomarker(
        kind=kind,
        gene=Gene("ERBB2", "HGNC:3430"),
        copy_number=12.0,
        source_ref="OBR 1 OBX-4 3a",
    )


def test_display_name_states_a_class() -> None:
    text = _message(
        "CWE|48018-6^Gene studied^LN|2a|HGNC:3236^EGFR^HGNC",
        "ST|47998-0^Variant display name^LN|2a|EGFR exon 19 deletion",
        "CWE|48018-6^Gene studied^LN|2b|HGNC:3765^FLT3^HGNC",
        "ST|47998-0^Variant display name^LN|2b|FLT3-ITD",
    )
    assert read_genetic_results(text).intake.alterations == [
        Variant(
            gene=Gene("EGFR", "HGNC:3236"),
            variant_class=VariantClass.EXON19_DELETION,
            exon=19,
            source_ref="OBR 1 OBX-4 2a",
        ),
        Variant(
            gene=Gene("FLT3", "HGNC:3765"),
            variant_class=VariantClass.ITD,
            source_ref="OBR 1 OBX-4 2b",
        ),
    ]


def test_protein_change_without_p_and_germline_origin() -> None:
    text = _message(
        "CWE|48018-6^Gene studied^LN|2a|HGNC:1101^BRCA2^HGNC",
        "ST|48005-3^Amino acid change p.HGVS^LN|2a|S1982Rfs*22",
        "CWE|48002-0^Genomic source class^LN|2a|LA18194-3^Likely germline^LN",
        "CWE|53037-8^Genetic variation clinical significance^LN|2a|LA6668-3^Pathogenic^LN",
    )
    (variant,) = read_genetic_results(text).intake.alterations
    assert variant == Variant(
        gene=Gene("BRCA2", "HGNC:1101"),
        hgvs_p="S1982Rfs*22",
        protein_change="S1982fs",
        origin=Origin.GERMLINE,
        classification=Significance.PATHOGENIC,
        source_ref="OBR 1 OBX-4 2a",
    )


def test_tmb_and_msi_rows() -> None:
    text = _message(
        "NM|94076-7^Mutations/Megabase [# Ratio] in Tumor^LN|4|12.5",
        "CWE|81695-9^Microsatellite instability^LN|5|LA26203-2^MSI-H^LN",
        "CWE|81695-9^Microsatellite instability^LN|6|LA14122-8^Stable^LN",
    )
    result = read_genetic_results(text)
    assert result.genetic_orders == ["1"]
    assert result.intake.alterations == [
        Biomarker(kind=BiomarkerKind.TMB, tmb=12.5, source_ref="OBR 1 OBX-4 4 94076-7"),
        Biomarker(kind=BiomarkerKind.MSI_HIGH, source_ref="OBR 1 OBX-4 5 81695-9"),
    ]
    assert result.intake.problems == []


def test_germline_obx_result_fills_the_hereditary_section() -> None:
    from inference.genomics import interpret
    from inference.genomics.model import PatientContext

    def message(source_class: str) -> str:
        return _message(
            "CWE|48018-6^Gene studied^LN|2a|HGNC:1101^BRCA2^HGNC",
            "ST|48005-3^Amino acid change p.HGVS^LN|2a|NP_000050.3:p.Ser1982ArgfsTer22",
            f"CWE|48002-0^Genomic source class^LN|2a|{source_class}",
        )

    germline = read_genetic_results(message("LA6683-2^Germline^LN")).intake.alterations
    hereditary = interpret(germline, PatientContext()).hereditary
    assert [h.gene.symbol for h in hereditary] == ["BRCA2"]
    somatic = read_genetic_results(message("LA6684-0^Somatic^LN")).intake.alterations
    assert interpret(somatic, PatientContext()).hereditary == ()
