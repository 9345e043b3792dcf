"""The notation labs and EHRs write (issue 12 §4), one line at a time and through the readers."""

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
from integrations.notation import LineError, read_line
from integrations.textlist import parse_text_list
from integrations.textlist_table import read_table


def _one(text: str) -> Variant | Biomarker:
    (item,) = read_line(text)
    assert isinstance(item, Variant | Biomarker)
    return item


@pytest.mark.parametrize(
    ("line", "gene", "key"),
    [
        ("EGFR E746_A750del", "EGFR", "E746_A750del"),
        ("EGFR Glu746_Ala750del", "EGFR", "E746_A750del"),
        ("EGFR A767_V769dup", "EGFR", "A767_V769dup"),
        ("EGFR Ala767_Val769dup", "EGFR", "A767_V769dup"),
        ("EGFR D770_N771insSVD", "EGFR", "D770_N771insSVD"),
        ("EGFR Asp770_Asn771insSerValAsp", "EGFR", "D770_N771insSVD"),
        ("EGFR L747_P753delinsS", "EGFR", "L747_P753delinsS"),
        ("NRAS Q61*", "NRAS", "Q61*"),
        ("NRAS Gln61Ter", "NRAS", "Q61*"),
        ("BRCA1 R1699fs", "BRCA1", "R1699fs"),
        ("BRCA2 W288fs*12", "BRCA2", "W288fs"),
        ("BRCA2 Trp288fsTer12", "BRCA2", "W288fs"),
    ],
)
def test_protein_changes_without_p_in_every_form(line: str, gene: str, key: str) -> None:
    variant = _one(line)
    assert isinstance(variant, Variant)
    assert variant.gene == Gene(gene)
    assert variant.protein_change == key
    assert variant.hgvs_p == "p." + line.split()[1]


@pytest.mark.parametrize(
    ("line", "gene", "variant_class", "exon"),
    [
        ("EGFR exon 19 deletion", "EGFR", VariantClass.EXON19_DELETION, 19),
        ("EGFR exon 19 del", "EGFR", VariantClass.EXON19_DELETION, 19),
        ("egfr ex19del", "EGFR", VariantClass.EXON19_DELETION, 19),
        ("EGFR del19", "EGFR", VariantClass.EXON19_DELETION, 19),
        ("EGFR 19del", "EGFR", VariantClass.EXON19_DELETION, 19),
        ("EGFR exon 20 insertion", "EGFR", VariantClass.EXON20_INSERTION, 20),
        ("EGFR ex20ins", "EGFR", VariantClass.EXON20_INSERTION, 20),
        ("EGFR 20ins", "EGFR", VariantClass.EXON20_INSERTION, 20),
        ("ERBB2 exon 20 insertion", "ERBB2", VariantClass.EXON20_INSERTION, 20),
        ("MET exon 14 skipping", "MET", VariantClass.EXON14_SKIPPING, 14),
        ("METex14", "MET", VariantClass.EXON14_SKIPPING, 14),
        ("MET ex14", "MET", VariantClass.EXON14_SKIPPING, 14),
        ("KRASex14", None, None, None),
        ("MET exon 14 skipping mutation", "MET", VariantClass.EXON14_SKIPPING, 14),
        ("KIT exon 11 mutation", "KIT", VariantClass.EXON_MUTATION, 11),
        ("FLT3-ITD", "FLT3", VariantClass.ITD, None),
        ("FLT3 ITD", "FLT3", VariantClass.ITD, None),
        ("FLT3 internal tandem duplication", "FLT3", VariantClass.ITD, None),
        ("FLT3-TKD", "FLT3", VariantClass.TKD, None),
        ("NPM1 mutation", "NPM1", VariantClass.MUTATION, None),
    ],
)
def test_classes_of_change(
    line: str, gene: str | None, variant_class: VariantClass | None, exon: int | None
) -> None:
    if gene is None:
        # An exon without its event is a class only in the labels' own "METex14".
        with pytest.raises(LineError, match="ex14 without the event"):
            read_line(line)
        return
    variant = _one(line)
    assert variant == Variant(gene=Gene(gene), variant_class=variant_class, exon=exon)
    assert variant.protein_change is None


@pytest.mark.parametrize(
    ("line", "five", "three"),
    [
        ("EML4::ALK", "EML4", "ALK"),
        ("EML4-ALK", "EML4", "ALK"),
        ("EML4-ALK fusion", "EML4", "ALK"),
        ("ALK fusion", None, "ALK"),
        ("ALK rearrangement", None, "ALK"),
        ("ROS1 rearranged", None, "ROS1"),
        ("CD74::ROS1 fusion", "CD74", "ROS1"),
    ],
)
def test_fusions(line: str, five: str | None, three: str) -> None:
    assert _one(line) == Biomarker(
        kind=BiomarkerKind.FUSION,
        gene=Gene(three),
        fusion_partner=Gene(five) if five else None,
        origin=Origin.SOMATIC,
    )


def test_fusion_with_a_kinase_domain_change_gives_both() -> None:
    fusion, change = read_line("BCR-ABL1 T315I")
    assert fusion == Biomarker(
        kind=BiomarkerKind.FUSION, gene=Gene("ABL1"), fusion_partner=Gene("BCR")
    )
    assert change == Variant(gene=Gene("ABL1"), hgvs_p="p.T315I", protein_change="T315I")


@pytest.mark.parametrize("line", ["NKX2-1 amp", "KRAS-G12C"])
def test_hyphenated_symbols_and_changes_are_not_fusions(line: str) -> None:
    if line.startswith("KRAS"):
        with pytest.raises(LineError, match="a gene alone"):
            read_line(line)
        return
    assert _one(line) == Biomarker(kind=BiomarkerKind.AMPLIFICATION, gene=Gene("NKX2-1"))


@pytest.mark.parametrize(
    ("line", "kind", "gene"),
    [
        ("ERBB2 amplification", BiomarkerKind.AMPLIFICATION, "ERBB2"),
        ("ERBB2 amp", BiomarkerKind.AMPLIFICATION, "ERBB2"),
        ("MET amplified", BiomarkerKind.AMPLIFICATION, "MET"),
        ("CDKN2A deletion", BiomarkerKind.DELETION, "CDKN2A"),
        ("CDKN2A loss", BiomarkerKind.DELETION, "CDKN2A"),
        ("CDKN2A homozygous deletion", BiomarkerKind.DELETION, "CDKN2A"),
    ],
)
def test_copy_number(line: str, kind: BiomarkerKind, gene: str) -> None:
    assert _one(line) == Biomarker(kind=kind, gene=Gene(gene))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("MSI-H", Biomarker(kind=BiomarkerKind.MSI_HIGH)),
        ("dMMR", Biomarker(kind=BiomarkerKind.MSI_HIGH)),
        ("TMB 12 mut/Mb", Biomarker(kind=BiomarkerKind.TMB, tmb=12.0)),
        ("TMB: 12.5 mutations/Mb", Biomarker(kind=BiomarkerKind.TMB, tmb=12.5)),
        ("HRD positive", Biomarker(kind=BiomarkerKind.HRD)),
        ("HRD-positive (GIS 48)", Biomarker(kind=BiomarkerKind.HRD, score=48.0)),
        ("homologous recombination deficient", Biomarker(kind=BiomarkerKind.HRD)),
    ],
)
def test_genome_wide_biomarkers(line: str, expected: Biomarker) -> None:
    assert _one(line) == expected


@pytest.mark.parametrize("line", ["MSS", "pMMR", "HRD negative", "HR proficient"])
def test_negative_genome_wide_results_are_no_finding(line: str) -> None:
    assert read_line(line) == ()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("HRD", "HRD needs the lab's status"),
        ("HRD score 42", "HRD needs the lab's status"),
        ("TMB high", "TMB needs a number"),
        ("EGFR exon 21 deletion", "exon 21 deletion is not a class this reader knows"),
        ("E746_A750del", "a change without a gene"),
        ("EGFR", "a gene alone is not an alteration"),
        ("exon 19 deletion", "an exon class without a gene"),
        ("EGFR E746_A750xyz", "is not a c. or p. HGVS change"),
        ("BCR-ABL1 T315I extra", "could not understand"),
    ],
)
def test_lines_that_cannot_be_read_say_why(line: str, reason: str) -> None:
    with pytest.raises(LineError, match=reason):
        read_line(line)


def test_stated_significance_is_kept_never_inferred() -> None:
    assert _one("BRCA1 c.68_69delAG germline pathogenic").classification is (
        Significance.PATHOGENIC
    )
    assert _one("BRCA2 c.5946delT likely pathogenic").classification is (
        Significance.LIKELY_PATHOGENIC
    )
    assert _one("TP53 R273H VUS").classification is Significance.UNCERTAIN
    assert _one("TP53 R273H").classification is None


LIST = """\
EGFR E746_A750del
EGFR exon 20 insertion
BCR-ABL1 T315I
FLT3-ITD
HRD
TMB 12 mut/Mb
"""


def test_text_list_reads_each_notation_and_gives_a_reason_per_line() -> None:
    result = parse_text_list(LIST, name="paste")
    assert [(a.source_ref, a.label) for a in result.alterations] == [
        ("paste:1", "EGFR E746_A750del"),
        ("paste:2", "EGFR exon 20 insertion"),
        ("paste:3", "BCR::ABL1 fusion"),
        ("paste:3", "ABL1 T315I"),
        ("paste:4", "FLT3 internal tandem duplication"),
        ("paste:6", "TMB 12 mut/Mb"),
    ]
    (problem,) = result.problems
    assert problem.location == "paste:5"
    assert "HRD needs the lab's status" in problem.reason
    assert "(line: HRD)" in problem.reason


GERMLINE = """\
BRCA1 c.68_69delAG
BRCA1 c.5266dupC
BRCA2 c.5946delT
TP53 R273H somatic
ERBB2 amplification
"""


def test_origin_argument_is_the_default_a_line_can_override() -> None:
    result = parse_text_list(GERMLINE, origin=Origin.GERMLINE)
    assert [(a.label, a.origin) for a in result.alterations] == [
        ("BRCA1 c.68_69delAG", Origin.GERMLINE),
        ("BRCA1 c.5266dupC", Origin.GERMLINE),
        ("BRCA2 c.5946delT", Origin.GERMLINE),
        ("TP53 R273H", Origin.SOMATIC),
        # A copy-number change keeps its somatic default: --origin speaks of variants.
        ("ERBB2 amplification", Origin.SOMATIC),
    ]
    # The variant itself arrives intact.
    assert result.alterations[0] == Variant(
        gene=Gene("BRCA1"), hgvs_c="c.68_69delAG", origin=Origin.GERMLINE, source_ref="text:1"
    )
    assert all(a.origin is Origin.UNKNOWN for a in parse_text_list(GERMLINE).alterations[:3])


TABLE = """\
gene,alteration,origin,classification
BRCA1,c.68_69delAG,germline,pathogenic
BRCA2,c.5946delT germline,,
EGFR,E746_A750del,somatic,
EGFR,exon 19 deletion,,
FLT3,ITD,,
,HRD positive,,
ALK,EML4-ALK,,
BRCA1,c.5266dupC,,likely pathogenic
TP53,R273H,,harmless
"""


def test_table_reads_notation_with_per_row_and_per_column_origin() -> None:
    result = read_table(TABLE, name="panel.csv", origin=Origin.SOMATIC)
    got = {a.source_ref: a for a in result.alterations}
    assert got["panel.csv:2"].origin is Origin.GERMLINE
    assert got["panel.csv:2"].classification is Significance.PATHOGENIC  # type: ignore[union-attr]
    assert got["panel.csv:3"].origin is Origin.GERMLINE  # the row's own text says so
    assert got["panel.csv:4"].protein_change == "E746_A750del"  # type: ignore[union-attr]
    assert got["panel.csv:5"].variant_class is VariantClass.EXON19_DELETION  # type: ignore[union-attr]
    assert got["panel.csv:5"].origin is Origin.SOMATIC  # from the caller's origin
    assert got["panel.csv:6"].variant_class is VariantClass.ITD  # type: ignore[union-attr]
    assert got["panel.csv:7"] == Biomarker(kind=BiomarkerKind.HRD, source_ref="panel.csv:7")
    assert got["panel.csv:8"].fusion_partner == Gene("EML4")  # type: ignore[union-attr]
    assert got["panel.csv:9"].classification is Significance.LIKELY_PATHOGENIC  # type: ignore[union-attr]
    (problem,) = result.problems
    assert problem.location == "panel.csv:10"
    assert "not an ACMG term" in problem.reason


def test_table_kind_column_names_a_class() -> None:
    result = read_table(
        "gene,variant_class,vaf\nEGFR,exon 19 deletion,0.2\nFLT3,ITD,\nKIT,sideways,\n",
        name="classes.csv",
    )
    assert result.alterations == [
        Variant(
            gene=Gene("EGFR"),
            variant_class=VariantClass.EXON19_DELETION,
            exon=19,
            allele_frequency=0.2,
            source_ref="classes.csv:2",
        ),
        Variant(gene=Gene("FLT3"), variant_class=VariantClass.ITD, source_ref="classes.csv:3"),
    ]
    (problem,) = result.problems
    assert problem.location == "classes.csv:4"
    assert "'sideways' is not a c. or p. HGVS change" in problem.reason
