"""Pasted alteration lists and CSV/TSV tables."""

from __future__ import annotations

import pytest

from inference.genomics.model import (
    Biomarker,
    BiomarkerKind,
    Gene,
    GenomeBuild,
    GenomicPosition,
    Genotype,
    Origin,
    Variant,
    Zygosity,
)
from integrations.errors import IntakeError
from integrations.textlist import parse_text_list
from integrations.textlist_table import read_table

PASTED = """\
TP53:c.818G>A
TP53:p.Arg273His
- BRAF V600E
EGFR p.L858R
ALK fusion
EML4-ALK fusion
ERBB2 amplification
CDKN2A deletion
MSI-H
TMB 12
BRCA1 c.68_69delAG germline
DPYD *2A/*2A
NKX2-1 amp
MSS
KRAS G12D; NRAS p.(Gln61Arg)  # two on one line
BRCA2 c.5946del (germline) het VAF 48% DP 120
NM_000546.6(TP53):c.818G>A
BRAF 7:140753336 A>T GRCh38
"""


def _gene(symbol: str) -> Gene:
    return Gene(symbol=symbol)


def test_pasted_forms_become_domain_types() -> None:
    result = parse_text_list(PASTED)
    assert result.problems == []
    got = {a.source_ref: a for a in result.alterations}
    assert got["text:1"] == Variant(gene=_gene("TP53"), hgvs_c="c.818G>A", source_ref="text:1")
    assert got["text:2"] == Variant(
        gene=_gene("TP53"), hgvs_p="p.Arg273His", protein_change="R273H", source_ref="text:2"
    )
    assert got["text:3"] == Variant(
        gene=_gene("BRAF"), hgvs_p="p.V600E", protein_change="V600E", source_ref="text:3"
    )
    assert got["text:4"].protein_change == "L858R"
    assert got["text:5"] == Biomarker(
        kind=BiomarkerKind.FUSION, gene=_gene("ALK"), source_ref="text:5"
    )
    assert got["text:6"] == Biomarker(
        kind=BiomarkerKind.FUSION,
        gene=_gene("ALK"),
        fusion_partner=_gene("EML4"),
        source_ref="text:6",
    )
    assert got["text:7"].kind is BiomarkerKind.AMPLIFICATION
    assert got["text:8"] == Biomarker(
        kind=BiomarkerKind.DELETION, gene=_gene("CDKN2A"), source_ref="text:8"
    )
    assert got["text:9"].kind is BiomarkerKind.MSI_HIGH
    assert got["text:10"] == Biomarker(kind=BiomarkerKind.TMB, tmb=12.0, source_ref="text:10")
    assert got["text:11"] == Variant(
        gene=_gene("BRCA1"), hgvs_c="c.68_69delAG", origin=Origin.GERMLINE, source_ref="text:11"
    )
    assert got["text:13"].gene == _gene("NKX2-1")  # a hyphenated symbol, not a fusion
    assert "text:14" not in got  # MSS: a negative result, no alteration, no problem
    two = [a for a in result.alterations if a.source_ref == "text:15"]
    assert [a.protein_change for a in two] == ["G12D", "Q61R"]  # type: ignore[union-attr]
    assert got["text:16"] == Variant(
        gene=_gene("BRCA2"),
        hgvs_c="c.5946del",
        origin=Origin.GERMLINE,
        zygosity=Zygosity.HETEROZYGOUS,
        allele_frequency=0.48,
        depth=120,
        source_ref="text:16",
    )
    assert got["text:17"].transcript == "NM_000546.6"
    assert got["text:18"].position == GenomicPosition(GenomeBuild.GRCH38, "7", 140753336, "A", "T")
    assert result.genotypes == [
        Genotype(gene=_gene("DPYD"), diplotype="*2A/*2A", source_ref="text:12")
    ]


def test_coding_and_protein_change_on_one_line() -> None:
    (braf,) = parse_text_list("BRAF NM_004333.6:c.1799T>A (p.V600E)").alterations
    assert braf == Variant(
        gene=_gene("BRAF"),
        hgvs_c="c.1799T>A",
        hgvs_p="p.V600E",
        transcript="NM_004333.6",
        protein_change="V600E",
        source_ref="text:1",
    )


def test_three_and_one_letter_lines_meet() -> None:
    result = parse_text_list("BRAF p.Val600Glu\nbraf V600E\nBRAF:p.(V600E)")
    assert {(a.gene.symbol, a.protein_change) for a in result.alterations} == {("BRAF", "V600E")}  # type: ignore[union-attr]


BAD = """\
BRAF V600E
EGFR exon 2 deletion
V600E
TMB high
chr7-140753336-A-T
KRAS G12D extra words
KRAS G12C
"""


def test_bad_lines_are_problems_with_line_numbers() -> None:
    result = parse_text_list(BAD, name="paste")
    assert [a.protein_change for a in result.alterations] == ["V600E", "G12C"]  # type: ignore[union-attr]
    assert [p.location for p in result.problems] == [
        "paste:2",
        "paste:3",
        "paste:4",
        "paste:5",
        "paste:6",
    ]
    assert "exon 2 deletion is not a class this reader knows" in result.problems[0].reason
    assert "without a gene" in result.problems[1].reason
    assert "needs the build" in result.problems[3].reason
    with pytest.raises(IntakeError) as raised:
        parse_text_list(BAD, name="paste", strict=True)
    assert len(raised.value.problems) == 5
    # The build makes the position line readable.
    with_build = parse_text_list("chr7-140753336-A-T", build="GRCh38")
    assert with_build.alterations[0].position.key == "GRCh38:7:140753336:A:T"  # type: ignore[union-attr]


def test_nothing_readable_is_an_error_even_when_lenient() -> None:
    with pytest.raises(IntakeError, match="no record could be read"):
        parse_text_list("hello world\n")


CSV = """\
Hugo_Symbol,HGVSp_Short,HGVSc,Chromosome,Start_Position,Reference_Allele,Tumor_Seq_Allele2,NCBI_Build,t_vaf
BRAF,p.V600E,c.1799T>A,7,140453136,A,T,GRCh37,0.31
PIK3CA,H1047R,,3,179234297,A,G,GRCh38,42%
KRAS,p.G12D,,,,,,,1.7
EGFR,p.E746_A750del,c.2235_2249del,7,55242465,GGAATTAAGAGAAGC,-,GRCh37,
TP53,,,,,,,,
"""


def test_csv_with_maf_style_headers() -> None:
    result = read_table(CSV, name="panel.csv")
    got = {a.source_ref: a for a in result.alterations}
    braf = got["panel.csv:2"]
    assert isinstance(braf, Variant)
    assert braf.position == GenomicPosition(GenomeBuild.GRCH37, "7", 140453136, "A", "T")
    assert (braf.protein_change, braf.hgvs_c, braf.allele_frequency) == ("V600E", "c.1799T>A", 0.31)
    assert got["panel.csv:3"].allele_frequency == 0.42  # type: ignore[union-attr]
    assert got["panel.csv:3"].hgvs_p == "p.H1047R"  # type: ignore[union-attr]
    # A MAF deletion allele '-' has no VCF anchor base: kept by HGVS, without a position.
    assert got["panel.csv:5"].position is None  # type: ignore[union-attr]
    assert got["panel.csv:5"].hgvs_c == "c.2235_2249del"  # type: ignore[union-attr]
    assert [(p.location, p.reason.split(":")[0]) for p in result.problems] == [
        ("panel.csv:4", "vaf '1.7' is above 1"),
        ("panel.csv:6", "row has neither gene with HGVS nor a genomic position"),
    ]


TSV = (
    "Gene\tAlteration\tOrigin\n"
    "ALK\tfusion\tsomatic\n"
    "ERBB2\tamplification\t\n"
    "BRCA1\tc.68_69delAG\tgermline\n"
    "\tMSI-H\t\n"
    "DPYD\t*1/*2A\t\n"
    "EGFR\texon 2 deletion\t\n"
)


def test_tsv_with_free_text_alteration_column() -> None:
    result = read_table(TSV, name="list.tsv")
    kinds = [a.kind if isinstance(a, Biomarker) else a.hgvs_c for a in result.alterations]
    assert kinds == [
        BiomarkerKind.FUSION,
        BiomarkerKind.AMPLIFICATION,
        "c.68_69delAG",
        BiomarkerKind.MSI_HIGH,
    ]
    assert result.alterations[2].origin is Origin.GERMLINE
    assert [g.diplotype for g in result.genotypes] == ["*1/*2A"]
    assert [p.location for p in result.problems] == ["list.tsv:7"]


def test_table_without_known_columns_is_refused() -> None:
    with pytest.raises(IntakeError, match="no gene, alteration or chrom column"):
        read_table("name,value\nfoo,1\n")
