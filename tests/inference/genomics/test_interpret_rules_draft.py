from __future__ import annotations

from dataclasses import replace

import pytest

from inference.errors import InputTooLargeError
from inference.genomics import BiomarkerKind, Origin, interpret, load_knowledge_base
from inference.genomics.model import (
    EvidenceLevel,
    Gene,
    Genotype,
    Interpretation,
    RegulatoryStatus,
    Response,
    TherapeuticFinding,
    Tier,
    TierAssignment,
)
from inference.genomics.tiering import rank
from tests.inference.genomics.factories import biomarker, context, variant
from tests.inference.genomics.test_interpret_rules import RES, SENS, TIER_IA, TIER_IIC

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
    with pytest.raises(InputTooLargeError) as refused:
        interpret([variant("TP53", protein="R273H")] * 100_001, context())
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
        assert result.alterations[2].protein_change == "V600E"


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
    evidence is of unknown significance (Tier III; KRAS G12V in chronic myeloid leukaemia has
    only evidence about other tumour types, so it is still tiered by that); a variant the KB
    does not know is reported unknown, untiered."""
    braf = variant("BRAF", protein="V600E")
    unknown = variant("NOTAGENE", protein="A1T")
    result = interpret([braf, unknown], context("COAD"))
    assert result.alteration_tiers == ((result.alterations[0].id, TIER_IA),)
    assert [u.alteration_id for u in result.unknown] == [result.alterations[1].id]
    assert result.unknown[0].reason == "not in knowledge base: gene NOTAGENE"


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
