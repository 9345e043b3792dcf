"""Hereditary-risk findings (ACMG SF v3.2 genes, PVS1) and pharmacogenomics (CPIC, DPWG)."""

from __future__ import annotations

import pytest

from inference.genomics import Gene, Genotype, Origin, interpret
from tests.inference.genomics.factories import context, variant


@pytest.mark.parametrize(
    ("gene", "change"),
    [
        ("BRCA2", {"hgvs_p": "p.Ser1982ArgfsTer22"}),
        ("BRCA1", {"hgvs_c": "NM_007294.4:c.5074+1G>A"}),
        ("MLH1", {"hgvs_p": "p.Arg226Ter"}),
        ("TP53", {"protein": "R213*"}),
    ],
)
def test_germline_loss_of_function_gives_counselling(gene: str, change: dict) -> None:
    result = interpret([variant(gene, origin=Origin.GERMLINE, **change)], context("BRCA"))
    (finding,) = result.hereditary
    assert finding.gene == Gene(gene)
    assert finding.classification.startswith("predicted loss of function (PVS1)")
    assert "genetic counselling" in finding.recommendation
    assert {e.id for e in finding.evidence} >= {"ACMG/AMP PVS1"}
    assert any("37347242" in e.pmids for e in finding.evidence)
    assert not result.unknown


def test_somatic_or_missense_or_gain_of_function_gene_gives_no_hereditary_finding() -> None:
    somatic = variant("BRCA2", hgvs_p="p.Ser1982ArgfsTer22", origin=Origin.SOMATIC)
    missense = variant("BRCA2", hgvs_p="p.Asp2723His", origin=Origin.GERMLINE)
    ret_nonsense = variant("RET", hgvs_p="p.Arg77Ter", origin=Origin.GERMLINE)
    non_canonical_splice = variant("BRCA1", hgvs_c="c.5074+5G>A", origin=Origin.GERMLINE)
    result = interpret([somatic, missense, ret_nonsense, non_canonical_splice], context("BRCA"))
    assert result.hereditary == ()


def test_known_pathogenic_germline_variant_from_civic_assertion() -> None:
    result = interpret([variant("VHL", hgvs_p="p.Arg167Gln", origin=Origin.GERMLINE)], context())
    (finding,) = result.hereditary
    assert finding.classification == "pathogenic"
    assert finding.evidence[0].id == "AID4"
    assert "Von Hippel-Lindau" in finding.condition


@pytest.mark.parametrize(
    ("gene", "diplotype", "phenotype", "score", "advice"),
    [
        ("DPYD", "*1/*1", "DPYD normal metabolizer", 2.0, "label-recommended"),
        ("DPYD", "*1/*2A", "DPYD intermediate metabolizer", 1.0, "by 50%"),
        ("DPYD", "*1/c.2846A>T", "DPYD intermediate metabolizer", 1.5, "by 50%"),
        ("DPYD", "c.2846A>T/HapB3", "DPYD intermediate metabolizer", 1.0, "by 50%"),
        ("DPYD", "*2A/c.2846A>T", "DPYD poor metabolizer", 0.5, "strongly reduced"),
        ("DPYD", "*2A/*13", "DPYD poor metabolizer", 0.0, "Avoid"),
        ("UGT1A1", "*28/*28", "UGT1A1 poor metabolizer", None, "70%"),
        ("UGT1A1", "*1/*28", "UGT1A1 intermediate metabolizer", None, "No action"),
        ("TPMT", "*1/*3A", "TPMT intermediate metabolizer", None, "30-80%"),
        ("TPMT", "*3A/*3C", "TPMT poor metabolizer", None, "10-fold"),
        ("NUDT15", "*3/*3", "NUDT15 poor metabolizer", None, "10 mg/m2/day"),
    ],
)
def test_pharmacogenomic_phenotypes(
    gene: str, diplotype: str, phenotype: str, score: float | None, advice: str
) -> None:
    result = interpret([], context(), genotypes=[Genotype(Gene(gene), diplotype)])
    (finding,) = result.pharmacogenomic
    assert finding.phenotype == phenotype
    assert finding.activity_score == score
    assert advice in finding.recommendation
    assert finding.evidence[0].url.startswith("https://")
    assert finding.evidence[0].pmids


def test_dpyd_cites_cpic_2017_and_ugt1a1_cites_dpwg_not_cpic() -> None:
    result = interpret(
        [],
        context(),
        genotypes=[Genotype(Gene("DPYD"), "*1/*2A"), Genotype(Gene("UGT1A1"), "*28/*28")],
    )
    dpyd, ugt = result.pharmacogenomic
    assert dpyd.evidence[0].pmids == ("29152729",)
    assert {d.name for d in dpyd.drugs} == {"fluorouracil", "capecitabine"}
    assert ugt.evidence[0].id.startswith("DPWG")
    assert ugt.evidence[0].pmids == ("36443464",)


@pytest.mark.parametrize(
    ("gene", "diplotype"), [("DPYD", "*1/*99"), ("CYP2D6", "*1/*4"), ("DPYD", "*1")]
)
def test_unknown_pharmacogenomic_input_is_unknown(gene: str, diplotype: str) -> None:
    result = interpret([], context(), genotypes=[Genotype(Gene(gene), diplotype)])
    assert result.pharmacogenomic == ()
    (unknown,) = result.unknown
    assert unknown.reason.startswith("not in knowledge base")
