"""The interpretation rules one behaviour per test (issue 13 item 2: mutation testing).

Each test states a rule of :func:`inference.genomics.interpret` that a surviving mutant showed
no test checked. Expected values come from the knowledge-base sources, not from the code:

- CPIC DPYD-fluoropyrimidines (Amstutz et al. 2018, PMID 29152729; allele activity values and
  the activity-score phenotype table), CPIC TPMT/NUDT15-thiopurines (Relling et al. 2019,
  PMID 30447069), DPWG UGT1A1-irinotecan (Hulshof et al. 2023, PMID 36443464), as curated in
  ``inference/genomics/kb/sources/curated/pharmacogenomics.toml``;
- the FDA labels and CIViC evidence items cited at each test.
"""

from __future__ import annotations

import copy

import pytest

from inference.genomics import (
    BiomarkerKind,
    Gene,
    Genotype,
    Origin,
    PatientContext,
    Response,
    interpret,
    resolve_tumour_type,
)
from inference.genomics.interpret import resolve_conflicts
from inference.genomics.kb import load_knowledge_base
from inference.genomics.kb.store import KnowledgeBase
from inference.genomics.model import (
    Alteration,
    Evidence,
    EvidenceLevel,
    Medication,
    TherapeuticFinding,
    Tier,
    TierAssignment,
)
from inference.genomics.queries import variants_by_tier
from tests.inference.genomics.factories import biomarker, context, variant

# ------------------------------------------------------------------ pharmacogenomics


@pytest.mark.parametrize(
    ("gene", "diplotype", "reason"),
    [
        # CYP2D6 is no pharmacogene of the oncology KB (tamoxifen is not curated)
        ("CYP2D6", "*1/*4", "not in knowledge base: pharmacogene CYP2D6"),
        # *99 is no DPYD allele of the CPIC allele functionality table
        ("DPYD", "*1/*99", "not in knowledge base: DPYD allele(s) in *1/*99"),
        # one allele is no diplotype: the phenotype needs both
        ("DPYD", "*1", "not in knowledge base: DPYD allele(s) in *1"),
        ("DPYD", "*1/*2A/*13", "not in knowledge base: DPYD allele(s) in *1/*2A/*13"),
    ],
)
def test_a_genotype_the_kb_cannot_phenotype_is_reported_unknown_by_gene_and_diplotype(
    gene: str, diplotype: str, reason: str
) -> None:
    """The report lists it as "<gene> <diplotype>: <reason>"; it is a genotype, not a variant,
    so the variant count's "not in the knowledge base" does not include it."""
    result = interpret([], context(), genotypes=[Genotype(Gene(gene), diplotype)])
    assert result.pharmacogenomic == ()
    (unknown,) = result.unknown
    assert unknown.label == f"{gene} {diplotype}"
    assert unknown.reason == reason
    assert unknown.alteration_id == f"genotype:{gene}:{diplotype}"
    assert variants_by_tier(result)["Unknown"] == 0


def test_an_unknown_variant_is_counted_but_an_unknown_genotype_is_not() -> None:
    """EGFR A1118T is in no statement of the KB: one variant not in the knowledge base."""
    result = interpret(
        [variant("EGFR", protein="A1118T")],
        context("NSCLC"),
        genotypes=[Genotype(Gene("CYP2D6"), "*4/*4")],
    )
    assert len(result.unknown) == 2
    assert variants_by_tier(result)["Unknown"] == 1


@pytest.mark.parametrize(
    ("gene", "diplotype", "phenotype"),
    [
        # allele names are matched whatever their case (lab systems write *2a, hapb3)
        ("DPYD", "*1/*2a", "DPYD intermediate metabolizer"),
        ("DPYD", "hapb3/HAPB3", "DPYD intermediate metabolizer"),
        ("dpyd", "*2A / *13", "DPYD poor metabolizer"),
        # rsID synonyms of the CPIC table: rs3918290 is *2A (no function), rs67376798 is
        # c.2846A>T (decreased function, 0.5): 0 + 0.5 = 0.5
        ("DPYD", "rs3918290/rs67376798", "DPYD poor metabolizer"),
        ("UGT1A1", "*6/*28", "UGT1A1 poor metabolizer"),
        ("UGT1A1", "*1/*1", "UGT1A1 normal metabolizer"),
        ("TPMT", "*1/*1", "TPMT normal metabolizer"),
        ("NUDT15", "*1/*2", "NUDT15 intermediate metabolizer"),
    ],
)
def test_phenotype_from_the_guideline_table(gene: str, diplotype: str, phenotype: str) -> None:
    result = interpret([], context(), genotypes=[Genotype(Gene(gene), diplotype)])
    assert result.unknown == ()
    (finding,) = result.pharmacogenomic
    assert finding.phenotype == phenotype
    assert finding.gene == Gene(gene.upper())
    assert finding.diplotype == diplotype


def test_dpyd_finding_names_the_drugs_the_guideline_covers() -> None:
    """CPIC DPYD covers the fluoropyrimidines fluorouracil and capecitabine; *13 has no
    function (0), *1 normal function (1): activity score 1, intermediate metabolizer."""
    result = interpret([], context(), genotypes=[Genotype(Gene("DPYD"), "*1/*13")])
    (finding,) = result.pharmacogenomic
    assert finding.phenotype == "DPYD intermediate metabolizer"
    assert finding.activity_score == 1.0
    assert {d.name for d in finding.drugs} == {"fluorouracil", "capecitabine"}
    assert "50%" in finding.recommendation


def test_thiopurine_finding_cites_the_cpic_2018_thiopurine_guideline() -> None:
    result = interpret([], context(), genotypes=[Genotype(Gene("TPMT"), "*1/*3C")])
    (finding,) = result.pharmacogenomic
    (evidence,) = finding.evidence
    assert evidence.source == "CPIC"
    assert evidence.id == "CPIC TPMT/NUDT15-thiopurines"
    assert evidence.url == "https://cpicpgx.org/guidelines/guideline-for-thiopurines-and-tpmt/"
    assert evidence.pmids == ("30447069",)
    assert evidence.version == "2018 update"
    assert {d.name for d in finding.drugs} == {"mercaptopurine", "azathioprine", "thioguanine"}
    assert finding.activity_score is None  # CPIC function model: no activity score


def _kb_without_phenotype_row(gene: str, drop: int) -> KnowledgeBase:
    data = dict(load_knowledge_base().data)
    data["pharmacogenomics"] = copy.deepcopy(data["pharmacogenomics"])
    del data["pharmacogenomics"][gene]["phenotypes"][drop]
    return KnowledgeBase(data)


@pytest.mark.parametrize(
    ("gene", "drop", "diplotype"),
    [
        ("DPYD", 1, "*1/*2A"),  # no row for activity score 1 (intermediate)
        ("TPMT", 2, "*3A/*3C"),  # no row for two no-function alleles (poor)
    ],
)
def test_a_diplotype_no_phenotype_rule_covers_is_unknown_not_guessed(
    gene: str, drop: int, diplotype: str
) -> None:
    """A guideline table with a gap gives no phenotype: unknown is said as unknown."""
    kb = _kb_without_phenotype_row(gene, drop)
    result = interpret([], context(), genotypes=[Genotype(Gene(gene), diplotype)], kb=kb)
    assert result.pharmacogenomic == ()
    (unknown,) = result.unknown
    assert unknown.reason == f"not in knowledge base: no phenotype rule for {gene} {diplotype}"
    assert unknown.label == f"{gene} {diplotype}"
    assert unknown.alteration_id == f"genotype:{gene}:{diplotype}"


# ------------------------------------------------------------------ CIViC "A AND B" profiles


def test_an_and_profile_is_reported_once_on_its_first_part() -> None:
    """CIViC EID234 (molecular profile "BCR::ABL1 AND ABL1 T315I": resistance to imatinib in
    CML) needs both alterations; the patient carrying both gets it once, on the fusion (the
    profile's first part), not again on T315I."""
    fusion = biomarker(BiomarkerKind.FUSION, "ABL1", partner="BCR")
    t315i = variant("ABL1", protein="T315I")
    orders: list[list[Alteration]] = [[fusion, t315i], [t315i, fusion]]
    for order in orders:
        result = interpret(order, context("CML"))
        citing = [f for f in result.therapeutic if "EID234" in {e.id for e in f.evidence}]
        assert [f.alteration_id for f in citing] == [fusion.id]
        assert citing[0].response is Response.RESISTANT


# ------------------------------------------------------------------ conflicting evidence
# resolve_conflicts() on rows of one alteration (its docstring states the rules). The rows are
# written here: a regimen, a response, a tier, a disease and one evidence item each.

TIER_IA = TierAssignment(Tier.I, EvidenceLevel.A)
TIER_IB = TierAssignment(Tier.I, EvidenceLevel.B)
TIER_IIC = TierAssignment(Tier.II, EvidenceLevel.C)
TIER_IID = TierAssignment(Tier.II, EvidenceLevel.D)


def _row(
    drugs: str, response: Response, tier: TierAssignment, disease: str, eid: str
) -> TherapeuticFinding:
    return TherapeuticFinding(
        alteration_id="a1",
        drugs=tuple(Medication(name=d) for d in drugs.split(" + ")),
        response=response,
        tier=tier,
        evidence=(Evidence(source="CIViC", id=eid, url=f"https://civicdb.org/links/{eid}"),),
        disease=disease,
    )


def _offered(rows: tuple[TherapeuticFinding, ...]) -> list[tuple[str, str]]:
    return [(" + ".join(d.name for d in f.drugs), f.response.value) for f in rows]


SENS = Response.SENSITIVE
RES = Response.RESISTANT


def test_stronger_resistance_removes_the_weaker_sensitive_row_and_says_why() -> None:
    """EGFR T790M: erlotinib resistance (Tier I-B) outweighs erlotinib sensitivity (Tier II-C):
    the sensitive row is not offered; it is kept, cited, in the resistant row's conflicts."""
    sensitive = _row("erlotinib", SENS, TIER_IIC, "Lung Adenocarcinoma", "EID1")
    resistant = _row("erlotinib", RES, TIER_IB, "Non-small Cell Lung Cancer", "EID2")
    (kept,) = resolve_conflicts([sensitive, resistant])
    assert _offered((kept,)) == [("erlotinib", "resistant")]
    (conflict,) = kept.conflicts
    assert conflict.response is SENS
    assert conflict.tier == TIER_IIC
    assert conflict.disease == "Lung Adenocarcinoma"
    assert [e.id for e in conflict.evidence] == ["EID1"]
    assert conflict.resolution == (
        "sensitive evidence (Tier II - Level C; Lung Adenocarcinoma) outweighed by resistant "
        "evidence (Tier I - Level B; Non-small Cell Lung Cancer)"
    )


def test_weaker_resistance_about_the_same_regimen_is_not_listed_but_kept_in_conflicts() -> None:
    sensitive = _row("osimertinib", SENS, TIER_IA, "NSCLC", "EID1")
    resistant = _row("osimertinib", RES, TIER_IID, "NSCLC", "EID2")
    (kept,) = resolve_conflicts([resistant, sensitive])
    assert _offered((kept,)) == [("osimertinib", "sensitive")]
    (conflict,) = kept.conflicts
    assert conflict.resolution == (
        "resistant evidence (Tier II - Level D; NSCLC) outweighed by sensitive evidence "
        "(Tier I - Level A; NSCLC)"
    )


def test_the_strongest_of_several_rows_takes_the_conflict() -> None:
    """Two resistant rows outweigh one sensitive row: the Tier I-A one states it; at equal
    tiers, the disease named first alphabetically (a stable choice)."""
    sensitive = _row("cetuximab", SENS, TIER_IID, "Colorectal Cancer", "EID1")
    weak = _row("cetuximab", RES, TIER_IB, "Colon Adenocarcinoma", "EID2")
    strong = _row("cetuximab", RES, TIER_IA, "Rectal Adenocarcinoma", "EID3")
    rows = resolve_conflicts([weak, sensitive, strong])
    assert _offered(rows) == [("cetuximab", "resistant"), ("cetuximab", "resistant")]
    assert rows[0].conflicts == ()
    assert len(rows[1].conflicts) == 1
    tie_a = _row("cetuximab", RES, TIER_IA, "B disease", "EID4")
    tie_b = _row("cetuximab", RES, TIER_IA, "A disease", "EID5")
    rows = resolve_conflicts([tie_a, sensitive, tie_b])
    assert [len(r.conflicts) for r in rows] == [0, 1]
    weak_sensitive = _row("cetuximab", SENS, TIER_IID, "Colorectal Cancer", "EID6")
    strong_a = _row("cetuximab", SENS, TIER_IA, "B disease", "EID7")
    strong_b = _row("cetuximab", SENS, TIER_IA, "A disease", "EID8")
    resistant = _row("cetuximab", RES, TIER_IIC, "Colorectal Cancer", "EID9")
    rows = resolve_conflicts([weak_sensitive, strong_a, resistant, strong_b])
    assert _offered(rows) == [("cetuximab", "sensitive")] * 3
    assert [len(r.conflicts) for r in rows] == [0, 0, 1]  # "A disease" at Tier I-A


def test_single_agent_resistance_concerns_a_combination_only_when_stronger() -> None:
    """Cetuximab resistance (Tier I-B) concerns encorafenib + cetuximab at Tier II, not the
    combination labelled at Tier I-A (BRAFTOVI: encorafenib + cetuximab in BRAF V600E CRC)."""
    combination_ia = _row("encorafenib + cetuximab", SENS, TIER_IA, "CRC", "EID1")
    combination_iic = _row("encorafenib + cetuximab", SENS, TIER_IIC, "Melanoma", "EID2")
    resistant = _row("cetuximab", RES, TIER_IB, "CRC", "EID3")
    rows = resolve_conflicts([combination_ia, combination_iic, resistant])
    assert _offered(rows) == [
        ("encorafenib + cetuximab", "sensitive"),
        ("cetuximab", "resistant"),
    ]
    assert rows[0].conflicts == ()
    assert [c.disease for c in rows[1].conflicts] == ["Melanoma"]
    # equal tiers: the combination stays, the single agent's resistance beside it
    equal = _row("encorafenib + cetuximab", SENS, TIER_IB, "CRC", "EID4")
    rows = resolve_conflicts([equal, resistant])
    assert _offered(rows) == [("encorafenib + cetuximab", "sensitive"), ("cetuximab", "resistant")]
    assert all(r.conflicts == () for r in rows)


def test_combination_resistance_says_nothing_about_one_of_its_drugs() -> None:
    single = _row("cetuximab", SENS, TIER_IID, "CRC", "EID1")
    regimen = _row("cetuximab + irinotecan", RES, TIER_IA, "CRC", "EID2")
    rows = resolve_conflicts([single, regimen])
    assert _offered(rows) == [("cetuximab", "sensitive"), ("cetuximab + irinotecan", "resistant")]
    assert all(r.conflicts == () for r in rows)


def test_equal_tier_evidence_about_the_very_same_regimen_is_resolved_as_resistance() -> None:
    sensitive = _row("vemurafenib", SENS, TIER_IB, "CRC", "EID1")
    resistant = _row("vemurafenib", RES, TIER_IB, "CRC", "EID2")
    (kept,) = resolve_conflicts([sensitive, resistant])
    assert kept.response is RES
    assert [c.response for c in kept.conflicts] == [SENS]


def test_resistance_requiring_a_co_occurring_alteration_wins_whatever_the_tiers() -> None:
    """CIViC "BCR::ABL1 AND ABL1 T315I" (imatinib resistance) is more specific than the
    fusion-only imatinib label: it outweighs it though the label is Tier I-A."""
    label = _row("imatinib", SENS, TIER_IA, "CML", "GLEEVEC")
    profile = _row("imatinib", RES, TIER_IIC, "CML", "EID234")
    (kept,) = resolve_conflicts([label, profile], co_occurring=[profile])
    assert kept is not label
    assert kept.response is RES
    (conflict,) = kept.conflicts
    assert conflict.resolution.endswith(
        "(Tier II - Level C; CML), which requires an alteration the patient also carries"
    )
    # without the co-occurrence, the stronger label stands and the profile is a conflict
    (kept,) = resolve_conflicts([label, profile])
    assert kept.response is SENS
    assert [c.response for c in kept.conflicts] == [RES]


def test_a_label_exclusion_concerns_only_its_own_regimen() -> None:
    """TAFINLAR + MEKINIST are not indicated in colorectal cancer: no statement about
    dabrafenib + trametinib + panitumumab, which keeps its evidence."""
    exclusion = _row("dabrafenib + trametinib", RES, TIER_IA, "CRC", "TAFINLAR-LABEL")
    triplet = _row("dabrafenib + trametinib + panitumumab", SENS, TIER_IIC, "CRC", "EID1")
    doublet = _row("dabrafenib + trametinib", SENS, TIER_IIC, "CRC", "EID2")
    rows = resolve_conflicts([triplet, doublet, exclusion], exact=[exclusion])
    assert _offered(rows) == [
        ("dabrafenib + trametinib + panitumumab", "sensitive"),
        ("dabrafenib + trametinib", "resistant"),
    ]
    assert [c.disease for c in rows[1].conflicts] == ["CRC"]
    # without the exact flag the regimen's resistance concerns the triplet too
    rows = resolve_conflicts([triplet, doublet, exclusion])
    assert _offered(rows) == [("dabrafenib + trametinib", "resistant")]
    assert len(rows[0].conflicts) == 2


def test_rows_in_one_direction_only_are_returned_unchanged() -> None:
    a = _row("erlotinib", RES, TIER_IA, "NSCLC", "EID1")
    b = _row("gefitinib", RES, TIER_IIC, "NSCLC", "EID2")
    assert resolve_conflicts([a, b]) == (a, b)
    c = _row("osimertinib", SENS, TIER_IA, "NSCLC", "EID3")
    assert resolve_conflicts([c, b]) == (c, b)


# ------------------------------------------------------------------ FDA labels and tumour types


def test_a_gene_level_label_says_nothing_outside_its_tumour_type() -> None:
    """AVMAPKI FAKZYNJA CO-PACK (avutometinib + defactinib) is labelled for KRAS-mutated
    recurrent low-grade serous ovarian cancer: a KRAS G12C lung cancer gets no row for it,
    while the same variant in LGSOC does (FDA label, May 2025)."""
    regimen = ("avutometinib", "defactinib")
    lung = interpret([variant("KRAS", protein="G12C")], context("NSCLC"))
    assert regimen not in {tuple(d.name for d in f.drugs) for f in lung.therapeutic}
    ovary = interpret([variant("KRAS", protein="G12C")], context("LGSOC"))
    (row,) = [f for f in ovary.therapeutic if tuple(d.name for d in f.drugs) == regimen]
    assert row.fda_approved_for_tumour


def test_approvals_naming_the_alteration_come_before_a_gene_level_approval() -> None:
    """EGFR L858R in NSCLC, all Tier I-A FDA approvals: the labels naming exon 21 L858R
    (GILOTRIF, RYBREVANT with chemotherapy after a TKI, RYBREVANT + LAZCLUZE, VIZIMPRO, TARCEVA,
    CYRAMZA + erlotinib, IRESSA, TAGRISSO) by regimen name, then DATROWAY (datopotamab
    deruxtecan), labelled for any EGFR-mutated NSCLC."""
    result = interpret([variant("EGFR", protein="L858R")], context("NSCLC"))
    approved = [
        " + ".join(d.name for d in f.drugs)
        for f in result.therapeutic
        if f.fda_approved_for_tumour and f.tier == TIER_IA and f.response is SENS
    ]
    assert approved == [
        "afatinib",
        "amivantamab",
        "amivantamab + lazertinib",
        "dacomitinib",
        "erlotinib",
        "erlotinib + ramucirumab",
        "gefitinib",
        "osimertinib",
        "datopotamab deruxtecan",
    ]


def test_every_tumour_code_of_the_kb_names_a_tumour_type() -> None:
    """Each row's disease is read from the tumour table by the statement's code: the built KB
    has no statement whose code the table lacks."""
    kb = load_knowledge_base()
    codes = {s["tumour"] for s in kb.statements if s.get("tumour")}
    assert codes
    assert codes <= set(kb.tumour_types)


# ------------------------------------------------------------------ current medications


def test_a_current_medication_recorded_by_rxnorm_code_only_is_recognised() -> None:
    """BRAF V600E colorectal cancer predicts resistance to cetuximab alone (CIViC; the
    BRAFTOVI label pairs it with encorafenib). A MedicationRequest naming the brand (Erbitux)
    with RxNorm 318341 (cetuximab) is the same drug: the row is the current medication."""
    on_erbitux = PatientContext(
        tumour_type=resolve_tumour_type("COAD"),
        medications=(Medication(name="Erbitux", rxnorm="318341"),),
    )
    result = interpret([variant("BRAF", protein="V600E")], on_erbitux)
    current = [f for f in result.therapeutic if f.current_medication]
    assert [tuple(d.name for d in f.drugs) for f in current] == [("cetuximab",)]
    assert current[0].response is RES
    assert any("current medication cetuximab" in w for w in result.warnings)
    not_coded = PatientContext(
        tumour_type=resolve_tumour_type("COAD"), medications=(Medication(name="Erbitux"),)
    )
    result = interpret([variant("BRAF", protein="V600E")], not_coded)
    assert not any(f.current_medication for f in result.therapeutic)


def test_a_co_occurrence_row_does_not_stop_the_other_regimens_resolution() -> None:
    """T315I with BCR::ABL1: the AND-profile resistance to imatinib concerns imatinib only;
    weaker nilotinib resistance beside Tier I-A nilotinib sensitivity is still resolved (not
    listed, kept in the sensitive row's conflicts)."""
    profile = _row("imatinib", RES, TIER_IIC, "CML", "EID234")
    weak = _row("nilotinib", RES, TIER_IID, "CML", "EID1")
    strong = _row("nilotinib", SENS, TIER_IA, "CML", "EID2")
    rows = resolve_conflicts([profile, weak, strong], co_occurring=[profile])
    assert _offered(rows) == [("imatinib", "resistant"), ("nilotinib", "sensitive")]
    assert [c.disease for c in rows[1].conflicts] == ["CML"]


# ------------------------------------------------------------------ hereditary risk, unknowns


def test_a_known_pathogenic_germline_variant_is_reported_as_civic_asserts_it() -> None:
    """CIViC assertion AID14: VHL E70K, likely pathogenic for von Hippel-Lindau disease (ACMG
    PM1, PM2, PP1, PP4; CIViC release 01-Aug-2024), with the ACMG SF v3.2 recommendation."""
    germline = variant("VHL", protein="E70K", origin=Origin.GERMLINE)
    result = interpret([germline], context())
    (finding,) = result.hereditary
    assert finding.alteration_id == result.alterations[0].id
    assert finding.gene == Gene("VHL")
    assert finding.classification == "likely pathogenic"
    assert finding.condition == "Von Hippel-Lindau Disease"
    assert finding.recommendation.startswith("Refer for genetic counselling")
    assert finding.recommendation.endswith("(ACMG SF v3.2).")
    (evidence,) = finding.evidence
    assert evidence.source == "CIViC"
    assert evidence.id == "AID14"
    assert evidence.url == "https://civicdb.org/links/assertions/14"
    assert evidence.level == "ACMG PM1,PM2,PP1,PP4"
    assert evidence.version == "01-Aug-2024"


def test_an_alteration_the_kb_does_not_know_is_reported_by_its_label() -> None:
    """EGFR A1118T: EGFR is a KB gene, but no statement is about this change."""
    result = interpret([variant("EGFR", protein="A1118T")], context("NSCLC"))
    (unknown,) = result.unknown
    assert unknown.label == "EGFR A1118T"
    assert unknown.reason == "not in knowledge base: no evidence for this alteration of EGFR"
    assert unknown.alteration_id == result.alterations[0].id
