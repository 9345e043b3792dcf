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
from dataclasses import replace

import pytest

from inference.errors import InputTooLargeError
from inference.genomics import (
    BiomarkerKind,
    Gene,
    Genotype,
    Interpretation,
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
    Biomarker,
    Evidence,
    EvidenceLevel,
    Medication,
    RegulatoryStatus,
    TherapeuticFinding,
    Tier,
    TierAssignment,
    Variant,
)
from inference.genomics.queries import variants_by_tier
from inference.genomics.tiering import rank
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


def test_a_not_profile_is_no_evidence_for_the_variant_it_excludes() -> None:
    """CIViC EID11158 (molecular profile "NOT KIT D816V", PMID 19193436): imatinib response in
    systemic mastocytosis *without* KIT D816V, the patients the GLEEVEC label's ASM indication
    names. A patient with D816V must not be told imatinib works: CIViC EID7465 (PMID 25317746)
    gives D816V imatinib resistance, and that is what remains."""
    result = interpret([variant("KIT", protein="D816V")], context("Systemic Mastocytosis"))
    cited = {e.id for f in result.therapeutic for e in f.evidence}
    assert "EID11158" not in cited
    imatinib = [f for f in result.therapeutic if [d.name for d in f.drugs] == ["imatinib"]]
    assert imatinib
    assert {f.response for f in imatinib} == {Response.RESISTANT}
    assert "EID7465" in {e.id for f in imatinib for e in f.evidence}


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


# ------------------------------------------------------------------ therapy rows (_therapeutic)
# One row per regimen, response and disease, built from the statements an alteration matches.
# The notes a clinician reads on a row are checked whole, each "; "-separated part by itself.


def _row_of(
    result: Interpretation, drugs: tuple[str, ...], response: Response, tumour_code: str
) -> TherapeuticFinding:
    (row,) = [
        f
        for f in result.therapeutic
        if tuple(d.name for d in f.drugs) == drugs
        and f.response is response
        and f.tumour_code == tumour_code
    ]
    return row


def _notes(row: TherapeuticFinding) -> list[str]:
    assert row.context_note is not None
    return row.context_note.split("; ")


CML_FUSION = biomarker(BiomarkerKind.FUSION, "ABL1", partner="BCR")


def test_a_first_line_exclusion_is_a_cited_note_on_the_later_line_approval() -> None:
    """ICLUSIG section 1.3 (Limitations of Use): ponatinib is not indicated for newly
    diagnosed chronic-phase CML. Its CML indications are later-line (AP/BP CML with no other
    TKI indicated; CP-CML after two or more TKIs): the row stays approved for CML, later-line,
    cites the indications, and states the exclusion; the exclusion is no evidence of the row."""
    row = _row_of(interpret([CML_FUSION], context("CML")), ("ponatinib",), SENS, "CML")
    assert row.fda_approved_for_tumour
    assert row.regulatory_status is RegulatoryStatus.APPROVED_FOR_TUMOUR
    assert row.tier == TIER_IA
    assert row.line_of_therapy == "later-line"
    assert row.label_id == "ICLUSIG"
    assert row.source == "FDA"
    assert row.disease == "Chronic Myelogenous Leukemia"
    assert [e.id for e in row.evidence] == [
        "ICLUSIG-CML-BCRABL1-AP-BP",
        "ICLUSIG-CML-BCRABL1-CP-LATER",
    ]
    assert _notes(row) == [
        "FDA indication: adult patients with accelerated phase (AP) or blast phase (BP) CML for "
        "whom no other kinase inhibitors are indicated",
        "FDA label ICLUSIG section 1.3 (ICLUSIG-CML-BCRABL1-1L-NOT): not indicated first-line",
    ]
    assert ("ponatinib",) not in {
        tuple(d.name for d in f.drugs)
        for f in interpret([CML_FUSION], context("CML")).therapeutic
        if f.response is RES
    }


def test_a_withdrawn_indication_is_a_dated_cited_note_never_the_tier() -> None:
    """BALVERSA (erdafitinib): the 2019 accelerated approval for FGFR2-fusion urothelial
    carcinoma was narrowed to FGFR3 on 2024-01-19. An FGFR2::BICC1 bladder cancer keeps the CIViC
    evidence (EID1917, level C: Tier II-C in this tumour type), cites the withdrawn indication,
    and is marked withdrawn, with no label."""
    fusion = biomarker(BiomarkerKind.FUSION, "FGFR2", partner="BICC1")
    row = _row_of(interpret([fusion], context("BLCA")), ("erdafitinib",), SENS, "BLADDER")
    assert _notes(row) == ["FDA indication BALVERSA-UC-FGFR2-LATER withdrawn (2024-01-19)"]
    assert {e.id for e in row.evidence} == {"BALVERSA-UC-FGFR2-LATER", "EID1917"}
    assert row.tier == TIER_IIC
    assert row.regulatory_status is RegulatoryStatus.WITHDRAWN
    assert row.label_id is None
    assert row.source == "CIViC"
    assert not row.fda_approved_for_tumour


def test_a_label_exclusion_row_cites_label_section_and_the_label_s_words() -> None:
    """ERBITUX section 1.2: "not indicated for treatment of Ras-mutant colorectal cancer".
    KRAS G13D colorectal cancer: cetuximab is a Tier I-A resistant row of the FDA source, in
    colorectal adenocarcinoma, quoting the limitation; cetuximab is an approved drug (off-label
    here), the row is no approval and names no label."""
    row = _row_of(
        interpret([variant("KRAS", protein="G13D")], context("COAD")),
        ("cetuximab",),
        RES,
        "COADREAD",
    )
    assert _notes(row) == [
        "FDA label ERBITUX section 1.2 (ERBITUX-COADREAD-RAS-NOT): Limitations of Use: ERBITUX is "
        "not indicated for treatment of Ras-mutant colorectal cancer or when the results of the "
        "Ras mutation tests are unknown"
    ]
    assert row.tier == TIER_IA
    assert row.source == "FDA"
    assert row.disease == "Colorectal Adenocarcinoma"
    assert row.label_id is None
    assert row.line_of_therapy is None
    assert not row.fda_approved_for_tumour
    assert row.regulatory_status is RegulatoryStatus.APPROVED_OFF_LABEL
    assert "ERBITUX-COADREAD-RAS-NOT" in {e.id for e in row.evidence}


def test_a_pan_cancer_label_that_excludes_the_tumour_is_named_on_the_resistant_row() -> None:
    """TAFINLAR/MEKINIST: dabrafenib + trametinib for BRAF V600E solid tumours, except colorectal
    cancer (Limitations of Use: known intrinsic resistance to BRAF inhibition). In colorectal
    cancer the regimen's row is resistant, quotes both labels' limitations and names the
    tumour-agnostic indication that excludes this tumour type; no pan-cancer statement about
    the regimen (any source) is offered or listed as outweighed."""
    result = interpret([variant("BRAF", protein="V600E")], context("COAD"))
    row = _row_of(result, ("dabrafenib", "trametinib"), RES, "COADREAD")
    notes = _notes(row)
    assert notes[:2] == [
        "FDA label MEKINIST section 1 (MEKINIST-COADREAD-BRAF-V600E-NOT): Limitations of Use: "
        "MEKINIST is not indicated for treatment of patients with colorectal cancer because of "
        "known intrinsic resistance to BRAF inhibition",
        "FDA label TAFINLAR section 1.6 (TAFINLAR-COADREAD-BRAF-V600E-NOT): Limitations of Use: "
        "TAFINLAR is not indicated for treatment of patients with colorectal cancer because of "
        "known intrinsic resistance to BRAF inhibition",
    ]
    assert notes[2:] in (
        [f"the FDA label ({label}) excludes this tumour type for this regimen"]
        for label in ("TAFINLAR-SOLID-BRAF-V600E", "MEKINIST-SOLID-BRAF-V600E")
    )
    assert {e.id for e in row.evidence} == {
        "MEKINIST-COADREAD-BRAF-V600E-NOT",
        "TAFINLAR-COADREAD-BRAF-V600E-NOT",
    }
    assert row.regulatory_status is RegulatoryStatus.APPROVED_OTHER_TUMOUR
    regimen_rows = [
        f for f in result.therapeutic if {d.name for d in f.drugs} == {"dabrafenib", "trametinib"}
    ]
    assert regimen_rows == [row]
    assert "Cancer (any type)" not in {c.disease for c in row.conflicts}


def test_an_unstated_label_condition_is_named_with_what_is_missing() -> None:
    """PIQRAY (alpelisib + fulvestrant): HR-positive, HER2-negative PIK3CA-mutated advanced
    breast cancer, after endocrine therapy. Without receptor status the row is "approved for
    this tumour type if", names the conditions and which are not stated; with HR+ stated only
    HER2- is missing; with both, approved."""
    h1047r = variant("PIK3CA", protein="H1047R")
    regimen = ("alpelisib", "fulvestrant")
    unstated = _row_of(interpret([h1047r], context("BRCA")), regimen, SENS, "BREAST")
    assert "FDA label requires HER2-/HR+" in _notes(unstated)
    assert "not stated in the patient context: HER2-, HR+" in _notes(unstated)
    assert unstated.regulatory_status is RegulatoryStatus.APPROVED_FOR_TUMOUR_IF
    assert not unstated.fda_approved_for_tumour
    assert unstated.label_id == "PIQRAY"
    assert unstated.line_of_therapy == "later-line"
    hr_positive = _row_of(
        interpret([h1047r], context("BRCA", tags=("HR+",))), regimen, SENS, "BREAST"
    )
    assert "not stated in the patient context: HER2-" in _notes(hr_positive)
    both = _row_of(
        interpret([h1047r], context("BRCA", tags=("HR+", "HER2-"))), regimen, SENS, "BREAST"
    )
    assert both.fda_approved_for_tumour
    assert both.regulatory_status is RegulatoryStatus.APPROVED_FOR_TUMOUR
    assert not any(n.startswith("FDA label requires") for n in _notes(both))
    assert _notes(both)[0].startswith("FDA indication: in combination with fulvestrant ")


def test_a_germline_only_label_with_the_origin_unstated_is_conditional_and_says_why() -> None:
    """TALZENNA (talazoparib) section 1.1: germline BRCA-mutated HER2-negative breast cancer.
    A BRCA2 frameshift of unstated origin in HER2- breast cancer: approved for this tumour type
    if the variant is germline, the label named in the note, not listed as the row's label."""
    brca2 = variant("BRCA2", hgvs_c="c.5946delT", origin=Origin.UNKNOWN)
    row = _row_of(
        interpret([brca2], context("BRCA", tags=("HER2-",))), ("talazoparib",), SENS, "BREAST"
    )
    assert "FDA label (TALZENNA-BREAST-GBRCA) requires a germline variant; origin not stated" in (
        row.context_note or ""
    )
    assert row.regulatory_status is RegulatoryStatus.APPROVED_FOR_TUMOUR_IF
    assert not row.fda_approved_for_tumour
    assert row.label_id is None
    assert row.tier == TIER_IA
    germline = replace(brca2, origin=Origin.GERMLINE)
    row = _row_of(
        interpret([germline], context("BRCA", tags=("HER2-",))), ("talazoparib",), SENS, "BREAST"
    )
    assert row.label_id == "TALZENNA"
    assert row.regulatory_status is RegulatoryStatus.APPROVED_FOR_TUMOUR


def test_an_and_profile_row_names_what_it_requires() -> None:
    """CIViC EID234 ("BCR::ABL1 AND ABL1 T315I": imatinib resistance in CML) is stated with
    what it requires, on the imatinib resistant row (CIViC source, no label). Imatinib is
    labelled for BCR::ABL1 in another tumour type (GLEEVEC: Ph+ ALL), which the row says."""
    both = interpret([CML_FUSION, variant("ABL1", protein="T315I")], context("CML"))
    row = _row_of(both, ("imatinib",), RES, "CML")
    assert "CIViC EID234: requires all of ABL1 BCR::ABL1 AND ABL1 T315I" in _notes(row)
    assert row.source == "CIViC"
    assert row.label_id is None
    assert row.regulatory_status is RegulatoryStatus.APPROVED_OTHER_TUMOUR


def test_drug_status_decides_the_status_of_a_row_without_a_label() -> None:
    """drugs.toml (FDA approval history): pd173074 is a research compound (preclinical),
    bafetinib investigational, infigratinib withdrawn (TRUSELTIQ, 2024-05-16), "chemotherapy" a
    class (status unknown); a regimen is as far from approval as its furthest drug."""
    fgfr2 = interpret([biomarker(BiomarkerKind.FUSION, "FGFR2", partner="BICC1")], context("BLCA"))
    preclinical = _row_of(fgfr2, ("pd173074",), SENS, "CHOL")
    assert preclinical.regulatory_status is RegulatoryStatus.PRECLINICAL
    assert preclinical.preclinical
    withdrawn = _row_of(fgfr2, ("infigratinib",), SENS, "CHOL")
    assert withdrawn.regulatory_status is RegulatoryStatus.WITHDRAWN
    cml = interpret([CML_FUSION], context("CML"))
    investigational = _row_of(cml, ("bafetinib",), SENS, "CML")
    assert investigational.regulatory_status is RegulatoryStatus.INVESTIGATIONAL
    g13d = interpret([variant("KRAS", protein="G13D")], context("COAD"))
    assert (
        _row_of(g13d, ("cetuximab", "chemotherapy"), RES, "COADREAD").regulatory_status
        is RegulatoryStatus.UNKNOWN
    )
    assert (
        _row_of(g13d, ("dactolisib", "selumetinib"), SENS, "COADREAD").regulatory_status
        is RegulatoryStatus.INVESTIGATIONAL
    )


def test_a_row_s_drugs_carry_their_rxnorm_codes() -> None:
    """BRAFTOVI + ERBITUX in BRAF V600E colorectal cancer: encorafenib RxNorm 2049106, cetuximab
    318341 (drugs.toml [rxnorm], checked against the metakb fixtures)."""
    row = _row_of(
        interpret([variant("BRAF", protein="V600E")], context("COAD")),
        ("cetuximab", "encorafenib"),
        SENS,
        "COADREAD",
    )
    assert [(d.name, d.rxnorm) for d in row.drugs] == [
        ("cetuximab", "318341"),
        ("encorafenib", "2049106"),
    ]


# ------------------------------------------------------------------ diagnostic and prognostic rows


def test_prognostic_evidence_is_grouped_per_disease_and_significance() -> None:
    """BRAF V600E is a poor-prognosis marker in colorectal cancer (CIViC EID103, EID1552,
    EID1940, EID2116, EID7156, EID7157; level B, in the patient's tumour type: Tier I-B), stated
    once with every evidence item; its diagnostic value in hairy cell leukaemia (EID1127, level
    B, another tumour type: Tier II-C) is a row of its own, after it."""
    result = interpret([variant("BRAF", protein="V600E")], context("COAD"))
    first = result.diagnostic[0]
    assert first.kind == "prognostic"
    assert first.statement == "BRAF V600E: Poor Outcome"
    assert first.disease == "Colorectal Cancer"
    assert first.tier == TierAssignment(Tier.I, EvidenceLevel.B)
    assert first.alteration_id == result.alterations[0].id
    assert [e.id for e in first.evidence] == [
        "EID103",
        "EID1552",
        "EID1940",
        "EID2116",
        "EID7156",
        "EID7157",
    ]
    (hairy_cell,) = [d for d in result.diagnostic if d.disease == "Hairy Cell Leukemia"]
    assert hairy_cell.kind == "diagnostic"
    assert hairy_cell.statement == "BRAF V600E: Positive"
    assert hairy_cell.tier == TIER_IIC
    assert [e.id for e in hairy_cell.evidence] == ["EID1127"]
    assert [rank(d.tier) for d in result.diagnostic] == sorted(
        rank(d.tier) for d in result.diagnostic
    )


# ------------------------------------------------------------------ interpret(): the whole report


def test_without_a_tumour_type_the_report_says_tiers_are_tumour_agnostic() -> None:
    warning = "no tumour type given: tiers computed in tumour-agnostic mode"
    assert interpret([variant("BRAF", protein="V600E")], context()).warnings == (warning,)
    assert warning not in interpret([variant("BRAF", protein="V600E")], context("COAD")).warnings


def test_the_input_limits_are_inclusive_and_the_refusal_states_them() -> None:
    """At most MAX_ALTERATIONS (100 000) alterations and MAX_GENOTYPES (1 000) genotypes."""
    dpyd = Genotype(Gene("DPYD"), "*1/*1")
    assert len(interpret([], context(), genotypes=[dpyd] * 1_000).pharmacogenomic) == 1_000
    with pytest.raises(InputTooLargeError) as refused:
        interpret([], context(), genotypes=[dpyd] * 1_001)
    assert str(refused.value) == (
        "0 alterations / 1001 genotypes: at most 100000 / 1000 per interpretation"
    )
    tp53 = variant("TP53", protein="R273H")
    assert len(interpret([tp53] * 100_000, context()).alterations) == 1  # duplicates: one
    with pytest.raises(InputTooLargeError) as refused:
        interpret([tp53] * 100_001, context())
    assert str(refused.value) == (
        "100001 alterations / 0 genotypes: at most 100000 / 1000 per interpretation"
    )


def test_an_alteration_reported_twice_is_interpreted_once() -> None:
    """A report listing BRAF V600E twice: one alteration, its rows once, one tier."""
    braf = variant("BRAF", protein="V600E")
    once = interpret([braf], context("COAD"))
    twice = interpret([braf, braf], context("COAD"))
    assert len(twice.alterations) == 1
    assert twice.therapeutic == once.therapeutic
    assert twice.diagnostic == once.diagnostic
    assert twice.alteration_tiers == once.alteration_tiers


def test_an_approval_in_this_tumour_comes_first_in_its_tier_whatever_the_report_order() -> None:
    """Breast cancer, ESR1 Y537S reported before BRAF V600E, receptor status not given: both
    have Tier I-A sensitive rows. TAFINLAR + MEKINIST (BRAF V600E solid tumours, tumour-
    agnostic label) is an FDA approval here; ORSERDU (elacestrant) is labelled for ER-positive,
    HER2-negative breast cancer only, so without the receptor status it is not stated as
    approved here. The approval comes first within Tier I-A."""
    esr1, braf = variant("ESR1", protein="Y537S"), variant("BRAF", protein="V600E")
    result = interpret([esr1, braf], context("BRCA"))
    ids = [a.id for a in result.alterations]
    tier_one_a = [f for f in result.therapeutic if f.tier == TIER_IA and f.response is SENS]
    by_drugs = {tuple(d.name for d in f.drugs): f for f in tier_one_a}
    approved = by_drugs[("dabrafenib", "trametinib")]
    elacestrant = by_drugs[("elacestrant",)]
    assert (approved.alteration_id, approved.fda_approved_for_tumour) == (ids[1], True)
    assert (elacestrant.alteration_id, elacestrant.fda_approved_for_tumour) == (ids[0], False)
    assert tier_one_a.index(approved) < tier_one_a.index(elacestrant)
    assert all(f.fda_approved_for_tumour for f in tier_one_a[: tier_one_a.index(elacestrant)])


def test_a_duplicate_does_not_stop_the_alterations_reported_after_it() -> None:
    """BRAF V600E twice, then KRAS G12D, in colorectal cancer: KRAS G12D is still interpreted
    (a RAS mutation predicts resistance to the anti-EGFR antibodies: ERBITUX and VECTIBIX
    labels, section 1, "not indicated" in RAS-mutant colorectal cancer)."""
    braf, kras = variant("BRAF", protein="V600E"), variant("KRAS", protein="G12D")
    result = interpret([braf, braf, kras], context("COAD"))
    assert [a.gene for a in result.alterations] == [Gene("BRAF"), Gene("KRAS")]
    kras_id = result.alterations[1].id
    assert any(f.alteration_id == kras_id for f in result.therapeutic)


def test_the_report_keeps_input_order_within_a_tier_and_names_each_alteration() -> None:
    """KRAS G12C (sotorasib, adagrasib: LUMAKRAS, KRAZATI labels) and EGFR L858R (TAGRISSO and
    others) in NSCLC: both Tier I-A; each alteration's approvals follow the report's order, and
    each alteration appears with its gene; a variant given by position only is named by the
    knowledge base (GRCh38 7:140753336 A>T is BRAF V600E). DATROWAY (any EGFR mutation, gene
    level) comes after approvals naming the alteration, whatever the order."""
    kras, egfr = variant("KRAS", protein="G12C"), variant("EGFR", protein="L858R")
    braf = variant(build="GRCh38", chrom="7", pos=140753336, ref="A", alt="T")
    for order in ([kras, egfr], [egfr, kras]):
        result = interpret([*order, braf], context("NSCLC"))
        ids = [a.id for a in result.alterations]
        approved = [
            f.alteration_id
            for f in result.therapeutic
            if f.fda_approved_for_tumour
            and f.tier == TIER_IA
            and f.drugs[0].name != "datopotamab deruxtecan"
        ]
        assert approved == sorted(approved, key=ids.index)
        assert approved[0] == ids[0]
        assert [a.gene for a in result.alterations] == [
            *(a.gene for a in order),
            Gene("BRAF"),
        ]
        named = result.alterations[2]
        assert isinstance(named, Variant)
        assert named.protein_change == "V600E"


def test_the_report_carries_its_inputs_and_the_kb_version() -> None:
    kb = load_knowledge_base()
    genotypes = (Genotype(Gene("DPYD"), "*1/*2A"), Genotype(Gene("CYP2D6"), "*4/*4"))
    ctx = context("COAD")
    result = interpret([variant("BRAF", protein="V600E")], ctx, genotypes=genotypes, kb=kb)
    assert result.genotypes == genotypes
    assert result.context == ctx
    assert result.kb_version == kb.version
    assert [p.gene for p in result.pharmacogenomic] == [Gene("DPYD")]
    assert [u.label for u in result.unknown] == ["CYP2D6 *4/*4"]


def test_every_known_alteration_has_a_tier_and_an_unknown_one_none() -> None:
    """AMP/ASCO/CAP: a variant with therapeutic evidence takes its strongest tier (BRAF V600E
    in colorectal cancer: Tier I-A, BRAFTOVI + cetuximab); a known variant with no sensitivity
    evidence at all is Tier III (TP53 R273H in colorectal cancer: CIViC holds only resistance
    and prognostic evidence); a variant the KB does not know is reported unknown, untiered."""
    braf = variant("BRAF", protein="V600E")
    unknown = variant("NOTAGENE", protein="A1T")
    result = interpret([braf, unknown], context("COAD"))
    assert result.alteration_tiers == ((result.alterations[0].id, TIER_IA),)
    assert [u.alteration_id for u in result.unknown] == [result.alterations[1].id]
    assert result.unknown[0].reason == "not in knowledge base: gene NOTAGENE"
    tp53 = interpret([variant("TP53", protein="R273H")], context("COAD"))
    assert tp53.therapeutic
    assert all(f.response is RES for f in tp53.therapeutic)
    assert tp53.alteration_tiers == ((tp53.alterations[0].id, TierAssignment(Tier.III)),)


def test_current_medication_resistance_is_a_warning_naming_variant_drug_and_tier() -> None:
    """BRAF V600E colorectal cancer on cetuximab alone: resistance (CIViC, Tier I-B). The
    variant written twice (by protein change, and by GRCh38 position 7:140753336 A>T, which is
    another alteration record of the same label): warned once."""
    braf = variant("BRAF", protein="V600E")
    by_position = variant(build="GRCh38", chrom="7", pos=140753336, ref="A", alt="T")
    result = interpret([braf, by_position], context("COAD", medications=("cetuximab",)))
    assert len(result.alterations) == 2
    assert result.warnings == (
        "BRAF V600E: current medication cetuximab - knowledge base evidence of resistance "
        "(Tier I - Level B)",
    )
    result = interpret([braf], context("COAD", medications=("panitumumab", "cetuximab")))
    assert result.warnings == (
        "BRAF V600E: current medication cetuximab - knowledge base evidence of resistance "
        "(Tier I - Level B)",
        "BRAF V600E: current medication panitumumab - knowledge base evidence of resistance "
        "(Tier I - Level B)",
    )


# ------------------------------------------------------------------ resistance across alterations


def test_acquired_resistance_states_each_removed_row_with_the_reason() -> None:
    """EGFR L858R + T790M in NSCLC: T790M's resistance to erlotinib (CIViC, Tier I-B) removes
    L858R's erlotinib label row (TARCEVA, Tier I-A), stated on the resistant row with both tiers
    and why; L858R's tier stays I-A (the evidence stands, the offer does not)."""
    l858r, t790m = variant("EGFR", protein="L858R"), variant("EGFR", protein="T790M")
    result = interpret([l858r, t790m], context("NSCLC"))
    ids = [a.id for a in result.alterations]
    resistant = _row_of(result, ("erlotinib",), RES, "NSCLC")
    assert resistant.alteration_id == ids[1]
    moved = [c for c in resistant.conflicts if "TARCEVA-NSCLC-EGFR" in {e.id for e in c.evidence}]
    assert [c.resolution for c in moved] == [
        "sensitive evidence (Tier I - Level A; Non-Small Cell Lung Cancer) outweighed by "
        "resistant evidence (Tier I - Level B; Non-Small Cell Lung Cancer), on another "
        "alteration of the same gene in this patient"
    ]
    assert moved[0].response is SENS
    assert moved[0].tier == TIER_IA
    assert not [
        f for f in result.therapeutic if f.alteration_id == ids[0] and f.drugs == resistant.drugs
    ]
    assert dict(result.alteration_tiers)[ids[0]] == TIER_IA


def test_acquired_resistance_applies_whatever_is_reported_before_it() -> None:
    """BRAF V600E reported first (its NSCLC rows: TAFINLAR + MEKINIST, sensitive; no Tier I
    resistance on BRAF), then EGFR L858R + T790M: T790M still removes L858R's erlotinib label
    row (TARCEVA), as when EGFR is reported alone."""
    braf = variant("BRAF", protein="V600E")
    l858r, t790m = variant("EGFR", protein="L858R"), variant("EGFR", protein="T790M")
    result = interpret([braf, l858r, t790m], context("NSCLC"))
    ids = [a.id for a in result.alterations]
    assert any(f.alteration_id == ids[0] and f.response is SENS for f in result.therapeutic)
    resistant = _row_of(result, ("erlotinib",), RES, "NSCLC")
    assert resistant.alteration_id == ids[2]
    assert not [
        f for f in result.therapeutic if f.alteration_id == ids[1] and f.drugs == resistant.drugs
    ]


def test_resistance_on_another_gene_or_below_tier_one_removes_nothing() -> None:
    """EGFR L858R in NSCLC keeps its erlotinib and gefitinib approvals (TARCEVA, IRESSA) beside
    KRAS G12C, whose Tier I-B resistance to erlotinib (CIViC EID35) is about KRAS, and beside
    EGFR D761Y, whose resistance to both (CIViC EID1763, level C) is Tier II only."""
    l858r = variant("EGFR", protein="L858R")
    alone = interpret([l858r], context("NSCLC")).therapeutic
    for other in (variant("KRAS", protein="G12C"), variant("EGFR", protein="D761Y")):
        both = interpret([l858r, other], context("NSCLC"))
        own = [f for f in both.therapeutic if f.alteration_id == both.alterations[0].id]
        assert own == list(alone), other.gene
        resistant = {
            f.drugs[0].name
            for f in both.therapeutic
            if f.alteration_id == both.alterations[1].id and f.response is RES
        }
        assert {"erlotinib"} <= resistant, other.gene


def test_a_somatic_variant_skips_germline_only_labels_and_keeps_the_others() -> None:
    """A somatic BRCA2 frameshift (c.5946delT) in metastatic prostate cancer: the labels for
    germline or somatic BRCA/HRR-mutated mCRPC apply (LYNPARZA 1.7; LYNPARZA + abiraterone;
    AKEEGA; TALZENNA + enzalutamide; RUBRACA), while labels requiring a germline variant
    (gBRCAm breast, ovarian, pancreatic: LYNPARZA, TALZENNA, ZEJULA) say nothing about it."""
    somatic = variant("BRCA2", hgvs_c="c.5946delT", origin=Origin.SOMATIC)
    result = interpret([somatic], context("PRAD"))
    approved = {
        tuple(d.name for d in f.drugs) for f in result.therapeutic if f.fda_approved_for_tumour
    }
    assert approved == {
        ("olaparib",),
        ("abiraterone", "olaparib"),
        ("abiraterone", "niraparib"),
        ("enzalutamide", "talazoparib"),
        ("rucaparib",),
    }
    cited = {e.id for f in result.therapeutic for e in f.evidence}
    assert not {c for c in cited if "GBRCA" in c}


def test_a_regimen_with_only_a_withdrawn_indication_gets_no_row_and_hides_none() -> None:
    """GAVRETO (pralsetinib) for RET-mutant medullary thyroid cancer was withdrawn on
    2023-06-30 (AcceleRET-MTC could not be completed): RET M918T medullary thyroid cancer gets
    no pralsetinib row, since nothing else speaks for it there, and keeps every other
    regimen: selpercatinib approved (RETEVMO), cabozantinib and sorafenib (CIViC EID7710,
    EID1365), AZD1480 and motesanib (EID77, EID76)."""
    result = interpret([variant("RET", protein="M918T")], context("THME"))
    regimens = {(f.drugs[0].name, f.response) for f in result.therapeutic}
    assert regimens == {
        ("selpercatinib", SENS),
        ("cabozantinib", SENS),
        ("sorafenib", SENS),
        ("azd1480", SENS),
        ("motesanib", RES),
    }
    (selpercatinib,) = [f for f in result.therapeutic if f.drugs[0].name == "selpercatinib"]
    assert selpercatinib.fda_approved_for_tumour


def test_a_curated_resistance_rule_is_quoted_as_a_rule_not_as_an_indication() -> None:
    """The curated rule RES-RAS-CRC-ANTI-EGFR (ERBITUX and VECTIBIX labels, Indications and
    Usage) on KRAS G13D colorectal cancer: the panitumumab row quotes the rule as it is written,
    without the "FDA indication:" prefix of an approval, then VECTIBIX's limitation of use."""
    row = _row_of(
        interpret([variant("KRAS", protein="G13D")], context("COAD")),
        ("panitumumab",),
        RES,
        "COADREAD",
    )
    assert row.context_note is not None
    assert row.context_note.startswith(
        "Cetuximab and panitumumab are not indicated for RAS-mutant metastatic colorectal "
        "cancer (KRAS or NRAS mutations in exon 2 codons 12/13, exon 3 codons 59/61, exon 4 "
        "codons 117/146): no benefit, and harm in combination with oxaliplatin-based "
        "chemotherapy.; FDA label VECTIBIX section 1 (VECTIBIX-COADREAD-RAS-NOT): "
    )
    assert row.tier == TIER_IA


def test_a_drug_withdrawn_from_the_market_makes_its_rows_withdrawn() -> None:
    """Peginterferon alfa-2b for JAK2 V617F polycythemia vera (CIViC EID19, level B): the drug
    (PegIntron, Sylatron) is withdrawn from the US market (curated in ``drugs.toml``) and no
    FDA label fact speaks for the row, so the drug's own status makes it withdrawn and no card
    offers it (``queries.is_actionable``)."""
    result = interpret([variant("JAK2", protein="V617F")], context("Polycythemia Vera"))
    rows = [f for f in result.therapeutic if [d.name for d in f.drugs] == ["peginterferon alfa-2b"]]
    assert [e.id for f in rows for e in f.evidence] == ["EID19"]
    assert {f.regulatory_status for f in rows} == {RegulatoryStatus.WITHDRAWN}


def test_diagnostic_and_prognostic_rows_follow_the_predictive_ones() -> None:
    """BRAF V600E in papillary thyroid carcinoma has predictive, diagnostic and prognostic
    CIViC evidence: the diagnostic (EID80, level B) and prognostic (poor outcome: EID105,
    EID106, EID107, EID2137, EID2503, EID656, EID9170, all level B, in id order) rows are all
    reported, whatever comes first among the variant's statements."""
    result = interpret([variant("BRAF", protein="V600E")], context("PTC"))
    here = [f for f in result.diagnostic if f.disease == "Papillary Thyroid Carcinoma"]
    assert {(f.kind, f.statement) for f in here} == {
        ("diagnostic", "BRAF V600E: Positive"),
        ("prognostic", "BRAF V600E: Poor Outcome"),
    }
    (poor,) = [f for f in here if f.kind == "prognostic"]
    assert [e.id for e in poor.evidence] == [
        "EID105", "EID106", "EID107", "EID2137", "EID2503", "EID656", "EID9170"
    ]  # fmt: skip
    assert poor.tier.label == "Tier I - Level B"


def test_a_diagnostic_row_takes_its_strongest_evidence_first() -> None:
    """ACVR1 G328V in diffuse midline glioma (CIViC diagnostic evidence EID4846 and EID6955,
    level B; EID10011, level C): one row, its level-B evidence first (by rank, not by id)."""
    result = interpret([variant("ACVR1", protein="G328V")], context("DMG"))
    (row,) = [f for f in result.diagnostic if f.kind == "diagnostic"]
    assert [e.id for e in row.evidence] == ["EID4846", "EID6955", "EID10011"]


def test_outweighed_sensitivity_still_counts_for_the_variant_s_tier() -> None:
    """KRAS G13D colorectal cancer: CIViC level-B cetuximab sensitivity (EID306, EID145) is
    outweighed by the label's RAS-mutant resistance (ERBITUX), yet it is evidence of clinical
    significance, so the variant is Tier I (PCGR: the tier is of the evidence, the resolution
    is of what is offered); resistance evidence that lost does not count."""
    result = interpret([variant("KRAS", protein="G13D")], context("Colorectal Cancer"))
    assert variants_by_tier(result)["Tier I"] == 1
    outweighed = {e.id for f in result.therapeutic for c in f.conflicts for e in c.evidence}
    assert {"EID306", "EID145"} <= outweighed


def test_a_current_medication_warning_names_every_drug_of_the_regimen() -> None:
    """BRAF V600E colorectal cancer on dabrafenib and trametinib (TAFINLAR label: not indicated
    for colorectal cancer, intrinsic resistance to BRAF inhibition, Tier I-A): the report's
    warning names both drugs."""
    result = interpret(
        [variant("BRAF", protein="V600E")],
        context("Colorectal Cancer", medications=("dabrafenib", "trametinib")),
    )
    assert (
        "BRAF V600E: current medication dabrafenib, trametinib - knowledge base evidence of "
        "resistance (Tier I - Level A)"
    ) in result.warnings


def test_a_germline_copy_number_change_is_said_unknown_not_given_a_variant_s_risk() -> None:
    """A germline BRCA2 deletion in breast cancer: the hereditary rules (ClinVar/ACMG SF
    classifications) are about sequence variants, and no curated fact speaks of a germline
    deletion, so the result is reported as unknown rather than classified or dropped."""
    deletion = Biomarker(kind=BiomarkerKind.DELETION, gene=Gene("BRCA2"), origin=Origin.GERMLINE)
    result = interpret([deletion], context("Breast Cancer"))
    assert result.hereditary == ()
    assert [u.label for u in result.unknown] == ["BRCA2 deletion"]
    assert result.unknown[0].reason.startswith("not in knowledge base")
