"""interpret(): PCGR example variants, drug safety, resistance, biomarkers, unknowns, determinism.

The genomic positions are those of the PCGR example tumour VCFs (sigven/pcgr, MIT; TCGA calls),
written here as constants: T001-COAD carries BRAF V600E, T001-BRCA PIK3CA H1047R.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from inference.errors import InputTooLargeError
from inference.genomics import (
    BiomarkerKind,
    Interpretation,
    Response,
    TherapeuticFinding,
    Tier,
    interpret,
)
from inference.genomics.interpret import MAX_ALTERATIONS
from inference.genomics.kb import load_knowledge_base
from inference.genomics.model import (
    EvidenceLevel,
    Gene,
    Genotype,
    Medication,
    Origin,
    RegulatoryStatus,
    Significance,
    TierAssignment,
)
from inference.genomics.queries import (
    is_actionable,
    pharmacogenomic_actions,
    pharmacogenomic_tests,
    regimen_taken,
    required_tests,
    same_drug,
    variants_by_tier,
)
from inference.genomics.tiering import rank
from tests.inference.genomics.factories import biomarker, context, variant

BRAF_V600E_37 = {"build": "GRCh37", "chrom": "7", "pos": 140453136, "ref": "A", "alt": "T"}
BRAF_V600E_38 = {"build": "GRCh38", "chrom": "7", "pos": 140753336, "ref": "A", "alt": "T"}
PIK3CA_H1047R_37 = {"build": "GRCh37", "chrom": "3", "pos": 178952085, "ref": "A", "alt": "G"}
PIK3CA_H1047R_38 = {"build": "GRCh38", "chrom": "3", "pos": 179234297, "ref": "A", "alt": "G"}
KRAS_G12D_37 = {"build": "GRCh37", "chrom": "12", "pos": 25398284, "ref": "C", "alt": "T"}
KRAS_G12D_38 = {"build": "GRCh38", "chrom": "12", "pos": 25245350, "ref": "C", "alt": "T"}
TIER_IA = TierAssignment(Tier.I, EvidenceLevel.A)
G12C_DRUGS = {"sotorasib", "adagrasib"}


def _regimens(
    result: Interpretation, response: Response = Response.SENSITIVE
) -> dict[tuple[str, ...], TherapeuticFinding]:
    """The strongest row per regimen (rows are per disease since issue 12; findings arrive
    strongest first, so the first row of a regimen is kept)."""
    rows: dict[tuple[str, ...], TherapeuticFinding] = {}
    for f in result.therapeutic:
        if f.response is response:
            rows.setdefault(tuple(d.name for d in f.drugs), f)
    return rows


def _drugs(result: Interpretation) -> set[str]:
    return {d.name for f in result.therapeutic for d in f.drugs}


def _without_ids(result: Interpretation) -> list[TherapeuticFinding]:
    return [dataclasses.replace(f, alteration_id="") for f in result.therapeutic]


@pytest.mark.parametrize("position", [BRAF_V600E_37, BRAF_V600E_38])
def test_braf_v600e_colon_is_tier_one_with_encorafenib_cetuximab(position: dict) -> None:
    result = interpret([variant(**position)], context("COAD"))
    finding = _regimens(result)[("cetuximab", "encorafenib")]
    assert finding.tier == TIER_IA
    assert finding.fda_approved_for_tumour
    # The label now also holds the 2024 first-line indication (with mFOLFOX6); lines are the
    # FDA layer's line words (docs/kb/fda-facts.md), the label's wording is in ``setting``.
    assert finding.line_of_therapy == "first-line"
    assert finding.context_note is not None
    assert finding.context_note.startswith("FDA indication: ")
    assert "metastatic colorectal" in finding.context_note
    assert {e.id for e in finding.evidence} >= {"BRAFTOVI-COADREAD-BRAF-V600E-LATER", "EID9851"}
    # RxNorm ingredient codes where checked (HL7 genomics IG examples); none guessed.
    assert {d.name: d.rxnorm for d in finding.drugs} == {
        "cetuximab": "318341",
        "encorafenib": "2049106",
    }
    assert result.alteration_tiers[0][1] == TIER_IA
    assert not result.unknown


def test_braf_v600e_same_findings_in_both_builds() -> None:
    grch37 = interpret([variant(**BRAF_V600E_37)], context("COAD"))
    grch38 = interpret([variant(**BRAF_V600E_38)], context("COAD"))
    assert grch37.therapeutic  # not two empty lists
    assert _without_ids(grch37) == _without_ids(grch38)
    by_protein = interpret([variant("BRAF", hgvs_p="p.Val600Glu")], context("COAD"))
    assert _without_ids(by_protein) == _without_ids(grch38)


@pytest.mark.parametrize("position", [PIK3CA_H1047R_37, PIK3CA_H1047R_38])
def test_pik3ca_h1047r_hr_positive_her2_negative_breast(position: dict) -> None:
    result = interpret([variant(**position)], context("BRCA", tags=("HR+", "HER2-")))
    regimens = _regimens(result)
    for regimen in [
        ("alpelisib", "fulvestrant"),
        ("capivasertib", "fulvestrant"),
        ("fulvestrant", "inavolisib", "palbociclib"),
    ]:
        assert regimens[regimen].tier == TIER_IA, regimen
        assert regimens[regimen].fda_approved_for_tumour, regimen


def test_pik3ca_same_findings_in_both_builds() -> None:
    ctx = context("BRCA", tags=("HR+", "HER2-"))
    grch37 = interpret([variant(**PIK3CA_H1047R_37)], ctx)
    grch38 = interpret([variant(**PIK3CA_H1047R_38)], ctx)
    assert grch37.therapeutic
    assert _without_ids(grch37) == _without_ids(grch38)


def test_pik3ca_receptor_status_gates_the_approval() -> None:
    unknown_status = interpret([variant(**PIK3CA_H1047R_38)], context("BRCA"))
    finding = _regimens(unknown_status)[("alpelisib", "fulvestrant")]
    assert not finding.fda_approved_for_tumour
    assert finding.context_note is not None
    assert "HR+" in finding.context_note
    her2_positive = interpret([variant(**PIK3CA_H1047R_38)], context("BRCA", tags=("HER2+",)))
    assert _regimens(her2_positive)[("alpelisib", "fulvestrant")].tier != TIER_IA


@pytest.mark.parametrize("tumour", ["LUAD", "COAD", "PAAD", None])
@pytest.mark.parametrize(
    "kras",
    [
        {"gene": "KRAS", "hgvs_p": "p.Gly12Asp"},
        {"gene": "KRAS", "protein": "G12D"},
        {"gene": "KRAS", "hgvs_c": "NM_004985.4:c.35G>A"},
        KRAS_G12D_37,
        KRAS_G12D_38,
    ],
)
def test_kras_g12d_never_gets_a_g12c_inhibitor(tumour: str | None, kras: dict) -> None:
    result = interpret([variant(**kras)], context(tumour))
    assert not result.unknown, "G12D must be recognised, else this test proves nothing"
    assert not (_drugs(result) & G12C_DRUGS)


def test_kras_g12c_nsclc_gets_sotorasib_and_adagrasib() -> None:
    result = interpret([variant("KRAS", hgvs_p="p.Gly12Cys")], context("LUAD"))
    regimens = _regimens(result)
    assert regimens[("sotorasib",)].tier == TIER_IA
    assert regimens[("adagrasib",)].tier == TIER_IA
    assert regimens[("sotorasib",)].drugs[0].rxnorm is None  # not verified, so not coded


def test_kras_g12d_colorectal_is_resistant_to_anti_egfr_by_label() -> None:
    result = interpret([variant("KRAS", protein="G12D")], context("COAD"))
    resistant = _regimens(result, Response.RESISTANT)
    assert resistant[("cetuximab",)].tier == TIER_IA
    assert "RES-RAS-CRC-ANTI-EGFR" in {e.id for e in resistant[("panitumumab",)].evidence}


def test_t790m_resistance_flags_current_first_generation_tki() -> None:
    result = interpret(
        [variant("EGFR", hgvs_p="p.Thr790Met")], context("NSCLC", medications=("Erlotinib",))
    )
    resistant = _regimens(result, Response.RESISTANT)
    assert resistant[("erlotinib",)].current_medication
    assert not resistant[("gefitinib",)].current_medication
    assert any("erlotinib" in w and "resistance" in w for w in result.warnings)
    assert _regimens(result)[("osimertinib",)].tier == TIER_IA


def test_egfr_exon19_deletion_matches_by_codon_range() -> None:
    result = interpret([variant("EGFR", hgvs_p="p.Glu746_Ala750del")], context("LUAD"))
    assert _regimens(result)[("osimertinib",)].tier == TIER_IA
    outside = interpret([variant("EGFR", hgvs_p="p.Glu709_Thr710del")], context("LUAD"))
    assert ("osimertinib",) not in _regimens(outside)


def test_tumour_agnostic_approvals() -> None:
    ntrk = biomarker(BiomarkerKind.FUSION, "NTRK1", partner="TPM3")
    assert _regimens(interpret([ntrk], context("COAD")))[("larotrectinib",)].tier == TIER_IA
    # Larotrectinib is approved for solid tumours only: in leukaemia it is other-site evidence.
    in_aml = _regimens(interpret([ntrk], context("AML")))[("larotrectinib",)]
    assert in_aml.tier == TierAssignment(Tier.II, EvidenceLevel.C)
    high = interpret([biomarker(BiomarkerKind.TMB, tmb=12.0)], context("LUAD"))
    assert _regimens(high)[("pembrolizumab",)].tier == TIER_IA
    low = interpret([biomarker(BiomarkerKind.TMB, tmb=5.0)], context("LUAD"))
    assert not low.therapeutic
    assert low.unknown
    msi = interpret([biomarker(BiomarkerKind.MSI_HIGH)], context("UCEC"))
    assert _regimens(msi)[("pembrolizumab",)].tier == TIER_IA


def test_dabrafenib_trametinib_label_excludes_colorectal() -> None:
    braf = variant("BRAF", protein="V600E")
    thyroid = _regimens(interpret([braf], context("THPA")))[("dabrafenib", "trametinib")]
    assert "TAFINLAR-SOLID-BRAF-V600E" in {e.id for e in thyroid.evidence}
    assert thyroid.tier == TIER_IA
    in_colon = interpret([braf], context("COAD"))
    assert ("dabrafenib", "trametinib") not in _regimens(in_colon, Response.SENSITIVE)
    # The labels' Limitations of Use ("not indicated for colorectal cancer"): a row of its own,
    # cited with label and section, holding the CIViC sensitivity it outweighs.
    colon = _regimens(in_colon, Response.RESISTANT)[("dabrafenib", "trametinib")]
    assert "TAFINLAR-SOLID-BRAF-V600E" not in {e.id for e in colon.evidence}
    assert "TAFINLAR-COADREAD-BRAF-V600E-NOT" in {e.id for e in colon.evidence}
    assert colon.tier == TIER_IA
    assert not colon.fda_approved_for_tumour
    assert colon.context_note is not None
    assert "excludes this tumour type" in colon.context_note
    assert "FDA label TAFINLAR section 1" in colon.context_note
    assert any(c.response is Response.SENSITIVE for c in colon.conflicts)
    # "Not indicated" names the doublet: the triplet with panitumumab (CIViC EID6123) stays.
    triplet = _regimens(in_colon, Response.SENSITIVE)[("dabrafenib", "panitumumab", "trametinib")]
    assert "EID6123" in {e.id for e in triplet.evidence}


def test_erbb2_amplification_breast_trastuzumab() -> None:
    result = interpret([biomarker(BiomarkerKind.AMPLIFICATION, "ERBB2")], context("BRCA"))
    assert _regimens(result)[("trastuzumab",)].tier == TIER_IA


def test_unknown_gene_and_variant_are_reported_not_guessed() -> None:
    result = interpret(
        [
            variant("NOTAGENE1", hgvs_p="p.Gly12Asp"),
            variant("KRAS", hgvs_p="p.Leu19Phe"),
            variant(build="GRCh38", chrom="1", pos=12345, ref="A", alt="C"),
        ],
        context("COAD"),
    )
    assert not result.therapeutic
    assert [u.reason.split(":")[0] for u in result.unknown] == ["not in knowledge base"] * 3
    assert "gene NOTAGENE1" in result.unknown[0].reason


def test_no_tumour_type_uses_tumour_agnostic_mode() -> None:
    result = interpret([variant("BRAF", protein="V600E")], context(None))
    assert any("tumour-agnostic" in w for w in result.warnings)
    # Only the pan-cancer approval can reach Tier I without a tumour type.
    tier_one = [f for f in result.therapeutic if f.tier.tier is Tier.I]
    assert tier_one
    assert all(tuple(d.name for d in f.drugs) == ("dabrafenib", "trametinib") for f in tier_one)


def _panel() -> list:
    return [
        variant(**BRAF_V600E_38),
        variant("KRAS", protein="G12D"),
        variant("TP53", hgvs_p="p.Arg273His"),
        variant("EGFR", hgvs_p="p.Leu858Arg"),
        biomarker(BiomarkerKind.FUSION, "ALK", partner="EML4"),
        variant("NOTAGENE1", protein="A1T"),
    ]


def test_deterministic_and_thread_safe() -> None:
    ctx = context("LUAD", medications=("gefitinib",))
    first = interpret(_panel(), ctx)
    assert first.therapeutic
    assert first.unknown
    assert interpret(_panel(), ctx) == first
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: interpret(_panel(), ctx), range(32)))
    assert all(r == first for r in results)


def test_findings_sorted_by_tier() -> None:
    result = interpret(_panel(), context("LUAD"))
    ranks = [
        (f.tier.tier.value, f.tier.level.value if f.tier.level else "Z") for f in result.therapeutic
    ]
    order = {"I": 0, "II": 1, "III": 2, "IV": 3}
    assert [order[t] for t, _ in ranks] == sorted(order[t] for t, _ in ranks)


def test_civic_and_profile_needs_every_part() -> None:
    """ABL1 T315I with BCR::ABL1: CIViC's "BCR::ABL1 AND T315I" resistance to imatinib."""
    fusion = biomarker(BiomarkerKind.FUSION, "ABL1", partner="BCR")
    t315i = variant("ABL1", protein="T315I")
    both = interpret([fusion, t315i], context("CML"))
    resistant = _regimens(both, Response.RESISTANT)[("imatinib",)]
    assert resistant.tier.tier is Tier.I
    assert resistant.alteration_id == fusion.id
    assert resistant.context_note is not None
    assert "BCR::ABL1 AND ABL1 T315I" in resistant.context_note
    assert "EID234" in {e.id for e in resistant.evidence}
    # More specific than the fusion-only GLEEVEC label (Tier I-A): it wins, stated once, cited.
    assert ("imatinib",) not in _regimens(both)
    outweighed = [
        c
        for f in both.therapeutic
        for c in f.conflicts
        if "GLEEVEC-CML-BCRABL1-1L" in {e.id for e in c.evidence}
    ]
    assert len(outweighed) == 1
    assert "requires an alteration the patient also carries" in outweighed[0].resolution
    fusion_only = interpret([fusion], context("CML"))
    alone = _regimens(fusion_only, Response.RESISTANT).get(("imatinib",))
    assert alone is None or "EID234" not in {e.id for e in alone.evidence}
    assert _regimens(fusion_only)[("imatinib",)].tier.tier is Tier.I


def test_input_limits() -> None:
    many = [variant("TP53", protein="R273H")] * (MAX_ALTERATIONS + 1)
    with pytest.raises(InputTooLargeError, match="at most"):
        interpret(many, context("COAD"))


# ------------------------------------------------------------------ cards state only what is true
# (issue 12 item 5). The demo patient: colorectal cancer, BRAF V600E, on capecitabine alone,
# DPYD *1/*2A; and EGFR T790M in NSCLC, where CIViC holds evidence in both directions.


def _braf_crc(*medications: str) -> Interpretation:
    return interpret([variant(**BRAF_V600E_38)], context("COAD", medications=medications))


def _t790m() -> Interpretation:
    return interpret([variant("EGFR", protein="T790M")], context("NSCLC"))


def _rows(result: Interpretation, *drugs: str) -> list[TherapeuticFinding]:
    return [f for f in result.therapeutic if tuple(sorted(d.name for d in f.drugs)) == drugs]


def test_regimen_resistance_is_not_a_current_medication_for_one_of_its_drugs() -> None:
    result = _braf_crc("capecitabine")
    (regimen,) = _rows(result, "bevacizumab", "capecitabine", "oxaliplatin")
    assert regimen.response is Response.RESISTANT  # the evidence is there, in the report
    assert not regimen.current_medication
    assert not any(f.current_medication for f in result.therapeutic)
    assert not [w for w in result.warnings if "current medication" in w]


def test_regimen_resistance_is_current_when_the_whole_regimen_is_taken() -> None:
    result = _braf_crc("bevacizumab", "Capecitabine", "oxaliplatin")
    (regimen,) = _rows(result, "bevacizumab", "capecitabine", "oxaliplatin")
    assert regimen.current_medication
    (single,) = _rows(result, "oxaliplatin")  # single-agent evidence about a drug taken
    assert single.current_medication
    assert not _rows(result, "cetuximab")[0].current_medication


def test_each_row_states_its_own_disease_and_a_label_only_for_it() -> None:
    """No row carries a label about another disease (vemurafenib in glioma carried the
    melanoma label FDA-ZELBORAF-MEL; cobimetinib + vemurafenib in CRC carried COTELLIC-MEL)."""

    kb = load_knowledge_base()
    label_tumour = {s["evidence_id"]: s["tumour"] for s in kb.statements if s["source"] == "FDA"}
    # A label (BRAFTOVI) has facts in several tumours: the row's own tumour must be one of them.
    label_tumours: dict[str, set[str]] = {}
    for s in kb.statements:
        if s["source"] == "FDA" and s.get("label_id"):
            label_tumours.setdefault(s["label_id"], set()).add(s["tumour"])
    result = _braf_crc()
    checked = 0
    for row in result.therapeutic:
        assert row.disease
        assert row.source in {"FDA", "CIViC", "curated"}
        for ev in row.evidence:
            if ev.source == "FDA":
                assert label_tumour[ev.id] == row.tumour_code, (row.disease, ev.id)
                checked += 1
        if row.label_id is not None:
            assert row.tumour_code in label_tumours[row.label_id], (row.disease, row.label_id)
    assert checked >= 3  # CRC, melanoma and NSCLC labels are all among the rows
    melanoma = [r for r in _rows(result, "binimetinib", "encorafenib") if r.tumour_code == "MEL"]
    assert melanoma[0].label_id == "BRAFTOVI"
    assert "BRAFTOVI-MEL-BRAF-V600-BINIMETINIB" in {e.id for e in melanoma[0].evidence}
    assert not melanoma[0].fda_approved_for_tumour
    (crc,) = _rows(result, "cetuximab", "encorafenib")
    assert crc.label_id == "BRAFTOVI"
    assert "BRAFTOVI-COADREAD-BRAF-V600E-1L" in {e.id for e in crc.evidence}
    assert crc.disease == "Colorectal Adenocarcinoma"  # the OncoTree name


def test_every_row_has_a_regulatory_status() -> None:
    t790m = _t790m()
    status: dict[str, RegulatoryStatus] = {}
    for row in t790m.therapeutic:  # strongest row per drug first
        if len(row.drugs) == 1:
            status.setdefault(row.drugs[0].name, row.regulatory_status)
    assert status["osimertinib"] is RegulatoryStatus.APPROVED_FOR_TUMOUR
    # Rociletinib was never approved (FDA CRL 2016): visibly investigational beside osimertinib.
    assert status["rociletinib"] is RegulatoryStatus.INVESTIGATIONAL
    assert status["staurosporine"] is RegulatoryStatus.PRECLINICAL
    crc = _braf_crc()
    (melanoma,) = [r for r in _rows(crc, "binimetinib", "encorafenib") if r.tumour_code == "MEL"]
    assert melanoma.regulatory_status is RegulatoryStatus.APPROVED_OTHER_TUMOUR
    # Approved drugs in a combination no label names for BRAF V600E: off-label, not "approved".
    (triplet,) = _rows(crc, "alpelisib", "cetuximab", "encorafenib")
    assert triplet.regulatory_status is RegulatoryStatus.APPROVED_OFF_LABEL
    assert _rows(crc, "cetuximab", "encorafenib")[0].regulatory_status is (
        RegulatoryStatus.APPROVED_FOR_TUMOUR
    )


def test_t790m_conflicts_are_resolved_once_and_cited() -> None:
    """Erlotinib resistance (I-B) outweighs erlotinib + pemetrexed sensitivity (II-C); afatinib
    resistance (I-B) outweighs afatinib sensitivity (II-D): neither is offered, each conflict
    is stated once, on the resistance row, with its evidence."""
    result = _t790m()
    assert not _regimens(result).keys() & {("erlotinib", "pemetrexed"), ("afatinib",)}
    (erlotinib,) = [r for r in _rows(result, "erlotinib") if r.tier.tier is Tier.I]
    assert erlotinib.response is Response.RESISTANT
    (conflict,) = erlotinib.conflicts
    assert tuple(sorted(d.name for d in conflict.drugs)) == ("erlotinib", "pemetrexed")
    assert conflict.response is Response.SENSITIVE
    assert conflict.tier == TierAssignment(Tier.II, EvidenceLevel.C)
    assert conflict.evidence
    assert all(e.url for e in conflict.evidence)
    (afatinib,) = _rows(result, "afatinib")
    assert afatinib.response is Response.RESISTANT
    assert [c.tier for c in afatinib.conflicts] == [TierAssignment(Tier.II, EvidenceLevel.D)]
    stated = [c for f in result.therapeutic for c in f.conflicts]
    assert len(stated) == len({(c.drugs, c.disease, c.response) for c in stated})
    # No drug is offered below the level of stronger resistance evidence against it.
    for r in result.therapeutic:
        if r.response is Response.RESISTANT:
            for s in result.therapeutic:
                if s.response is Response.SENSITIVE and {d.name for d in r.drugs} <= {
                    d.name for d in s.drugs
                }:
                    assert rank(r.tier) >= rank(s.tier), (r.drugs, s.drugs)


def test_equal_tier_single_agent_resistance_leaves_the_combination() -> None:
    """Cetuximab alone fails in BRAF V600E CRC; encorafenib + cetuximab is the FDA answer."""
    result = _braf_crc()
    assert _rows(result, "cetuximab", "encorafenib")[0].tier == TIER_IA
    assert _rows(result, "cetuximab")[0].response is Response.RESISTANT


def test_preclinical_only_evidence_is_marked_and_not_actionable() -> None:
    result = _t790m()
    (staurosporine,) = _rows(result, "staurosporine")
    assert staurosporine.preclinical
    assert not is_actionable(staurosporine)
    for row in result.therapeutic:
        if (
            all(e.level == "D" for e in row.evidence if e.source == "CIViC")
            and row.source == "CIViC"
        ):
            assert row.preclinical, row.drugs
    (osimertinib,) = [r for r in _rows(result, "osimertinib") if r.tier == TIER_IA]
    assert not osimertinib.preclinical
    assert is_actionable(osimertinib)


def test_alteration_tier_still_counts_outweighed_sensitivity() -> None:
    """Resolution decides what is offered, not the variant's AMP tier (concordance)."""
    result = _t790m()
    assert result.alteration_tiers[0][1] == TIER_IA


# ------------------------------------------------------------------ typed queries (issue 13)


def test_same_drug_by_name_or_rxnorm_and_whole_regimens() -> None:
    assert same_drug(Medication(" Capecitabine "), Medication("capecitabine"))
    assert same_drug(Medication("Braftovi", rxnorm="2049106"), Medication("encorafenib", "2049106"))
    assert not same_drug(Medication("cetuximab"), Medication("panitumumab"))
    regimen = (Medication("bevacizumab"), Medication("capecitabine"), Medication("oxaliplatin"))
    assert not regimen_taken(regimen, [Medication("capecitabine")])
    assert regimen_taken(regimen, [*regimen, Medication("leucovorin")])
    assert not regimen_taken((), [Medication("capecitabine")])


def test_required_tests_for_osimertinib_in_nsclc_name_egfr_with_the_label() -> None:
    kb = load_knowledge_base()
    tests = required_tests(kb, Medication("Osimertinib"), context("NSCLC"))
    assert "EGFR" in tests
    assert tests["EGFR"].source_id.startswith("TAGRISSO-NSCLC-EGFR")
    assert "TAGRISSO" in tests["EGFR"].label
    assert tests["EGFR"].url.startswith("https://")
    assert required_tests(kb, Medication("osimertinib"), context("COAD")) == {}
    (dpyd,) = pharmacogenomic_tests(kb, Medication("capecitabine"))
    assert dpyd.gene == "DPYD"
    assert "cpicpgx.org" in dpyd.url


def test_pharmacogenomic_actions_skip_normal_metabolizers() -> None:
    capecitabine = Medication("capecitabine")
    normal = interpret([], context("COAD"), genotypes=[Genotype(Gene("DPYD"), "*1/*1")])
    assert normal.pharmacogenomic  # found, so the empty answer below means something
    assert pharmacogenomic_actions(normal, [capecitabine]) == ()
    carrier = interpret([], context("COAD"), genotypes=[Genotype(Gene("DPYD"), "*1/*2A")])
    (action,) = pharmacogenomic_actions(carrier, [capecitabine, Medication("cetuximab")])
    assert action.finding.phenotype == "DPYD intermediate metabolizer"
    assert action.affected == (capecitabine,)
    assert action.current
    assert not action.avoid
    (elsewhere,) = pharmacogenomic_actions(carrier, [Medication("cetuximab")])
    assert not elsewhere.current


def test_variants_by_tier_counts_each_variant_once() -> None:
    result = interpret(
        [
            variant(**BRAF_V600E_38),
            variant("EGFR", protein="T790M"),
            variant("ZZZ9", protein="A1B"),
        ],
        context("COAD"),
        genotypes=[Genotype(Gene("DPYD"), "*1/*99")],
    )
    counts = variants_by_tier(result)
    assert counts == {"Tier I": 1, "Tier II": 1, "Tier III": 0, "Tier IV": 0, "Unknown": 1}
    assert len(result.therapeutic) > 3  # rows are many; variants are three


# ------------------------------------------------------------------ FDA label rules (issue 12)
# Each test names the rule it guards; each was seen to fail with the rule removed (README).


def test_gene_level_label_matches_only_in_its_own_tumour() -> None:
    """AVMAPKI FAKZYNJA (avutometinib + defactinib) names "KRAS-mutated" LGSOC, no variant:
    in LGSOC a KRAS mutation the knowledge base knows (G12D) or a report calls pathogenic
    matches it; a variant nothing recognises (L19F) stays unknown, there and elsewhere."""
    g12d = variant("KRAS", protein="G12D")
    lgsoc = _regimens(interpret([g12d], context("LGSOC")))[("avutometinib", "defactinib")]
    assert lgsoc.fda_approved_for_tumour
    assert lgsoc.tier == TIER_IA
    l19f = variant("KRAS", protein="L19F")
    assert not interpret([l19f], context("LGSOC")).therapeutic
    stated = replace(l19f, classification=Significance.LIKELY_PATHOGENIC)
    assert ("avutometinib", "defactinib") in _regimens(interpret([stated], context("LGSOC")))
    elsewhere = interpret([l19f], context("COAD"))
    assert not elsewhere.therapeutic
    assert elsewhere.unknown[0].reason.startswith("not in knowledge base")


def test_label_exclusion_is_a_cited_row_that_outweighs_sensitivity() -> None:
    """ERBITUX section 1.2: not indicated for RAS-mutant colorectal cancer. KRAS G13D: no
    cetuximab offered (CIViC EID306 reports G13D sensitivity); the labelled G12C combination
    stays; outside colorectal cancer the exclusion says nothing."""
    g13d = interpret([variant("KRAS", protein="G13D")], context("COAD"))
    offered = [
        f for f in g13d.therapeutic if f.response is Response.SENSITIVE and not f.preclinical
    ]
    assert not [f for f in offered if {"cetuximab"} & {d.name for d in f.drugs}]
    cetuximab = _regimens(g13d, Response.RESISTANT)[("cetuximab",)]
    assert "ERBITUX-COADREAD-RAS-NOT" in {e.id for e in cetuximab.evidence}
    assert cetuximab.context_note is not None
    assert "FDA label ERBITUX section 1.2" in cetuximab.context_note
    assert cetuximab.tier == TIER_IA
    stated = [c for f in g13d.therapeutic for c in f.conflicts if "EID306" in str(c.evidence)]
    assert len(stated) == 1  # the outweighed sensitivity, once, cited
    g12c = interpret([variant("KRAS", protein="G12C")], context("COAD"))
    combo = _regimens(g12c)[("adagrasib", "cetuximab")]
    assert combo.fda_approved_for_tumour
    lung = interpret([variant("KRAS", protein="G13D")], context("NSCLC"))
    assert not [e for f in lung.therapeutic for e in f.evidence if e.id.endswith("-RAS-NOT")]


def test_withdrawn_indication_is_never_approved() -> None:
    """BALVERSA's FGFR2 urothelial indication was withdrawn (FGFR3 stays): erdafitinib for an
    FGFR2 fusion in bladder cancer is marked withdrawn; a withdrawn indication beside a current
    one (LYNPARZA gBRCA later-line ovarian, withdrawn; first-line maintenance, current) does not
    make olaparib withdrawn."""
    fusion = biomarker(BiomarkerKind.FUSION, "FGFR2", partner="BICC1")
    rows = [
        r
        for r in interpret([fusion], context("BLCA")).therapeutic
        if "BALVERSA-UC-FGFR2-LATER" in {e.id for e in r.evidence}
    ]
    assert rows
    for row in rows:
        assert row.regulatory_status is RegulatoryStatus.WITHDRAWN
        assert not row.fda_approved_for_tumour
        assert row.context_note is not None
        assert "withdrawn" in row.context_note
    brca2 = variant("BRCA2", hgvs_c="c.5946delT", origin=Origin.GERMLINE)
    (ovary,) = [
        r
        for r in _rows(interpret([brca2], context("PRAD")), "olaparib")
        if "LYNPARZA-OVARY-BRCA-1L-MAINT" in {e.id for e in r.evidence}
    ]
    assert ovary.regulatory_status is RegulatoryStatus.APPROVED_OTHER_TUMOUR


def test_germline_label_needs_a_germline_variant() -> None:
    """TALZENNA (talazoparib): germline BRCA-mutated HER2-negative breast cancer."""
    her2_negative = context("BRCA", tags=("HER2-",))

    def talazoparib(origin: Origin) -> TherapeuticFinding | None:
        found = interpret([variant("BRCA2", hgvs_c="c.5946delT", origin=origin)], her2_negative)
        return _regimens(found).get(("talazoparib",))

    germline = talazoparib(Origin.GERMLINE)
    assert germline is not None
    assert germline.fda_approved_for_tumour
    assert germline.regulatory_status is RegulatoryStatus.APPROVED_FOR_TUMOUR
    unstated = talazoparib(Origin.UNKNOWN)
    assert unstated is not None
    assert not unstated.fda_approved_for_tumour
    assert unstated.context_note is not None
    assert "requires a germline variant; origin not stated" in unstated.context_note
    somatic = talazoparib(Origin.SOMATIC)
    assert somatic is None or "TALZENNA-BREAST-GBRCA" not in {e.id for e in somatic.evidence}


def test_acquired_resistance_mutation_removes_sensitivity_of_the_same_gene() -> None:
    """EGFR L858R + T790M in NSCLC: T790M's Tier I resistance to erlotinib, gefitinib and
    afatinib removes L858R's sensitive rows for them (stated once each, cited); osimertinib
    stays approved. L858R alone keeps erlotinib."""
    l858r = variant("EGFR", protein="L858R")
    alone = _regimens(interpret([l858r], context("NSCLC")))
    assert alone[("erlotinib",)].tier == TIER_IA
    assert alone[("erlotinib",)].fda_approved_for_tumour
    both = interpret([l858r, variant("EGFR", protein="T790M")], context("NSCLC"))
    sensitive = _regimens(both)
    for drug in ("erlotinib", "gefitinib", "afatinib"):
        assert (drug,) not in sensitive, drug
        resistant = _regimens(both, Response.RESISTANT)[(drug,)]
        assert resistant.tier.tier is Tier.I
        moved = [
            c
            for f in both.therapeutic
            for c in f.conflicts
            if c.drugs == resistant.drugs and "another alteration of the same gene" in c.resolution
        ]
        # Each removed row (one per disease) is stated once, cited; the label row among them.
        assert moved, drug
        assert len({c.disease for c in moved}) == len(moved), drug
        assert all(c.evidence for c in moved)
        alone_rows = [
            f
            for f in interpret([l858r], context("NSCLC")).therapeutic
            if f.drugs == resistant.drugs and f.response is Response.SENSITIVE
        ]
        assert len(moved) == len(alone_rows), drug
    assert sensitive[("osimertinib",)].fda_approved_for_tumour


def test_truncating_c_forms_reach_hereditary_and_parp_labels() -> None:
    """Founder frameshifts written as c. only (no p.), germline, in breast and prostate cancer."""
    founders = [
        variant("BRCA1", hgvs_c="c.68_69delAG", origin=Origin.GERMLINE),
        variant("BRCA1", hgvs_c="c.5266dupC", origin=Origin.GERMLINE),
        variant("BRCA2", hgvs_c="NM_000059.4:c.5946delT", origin=Origin.GERMLINE),
    ]
    breast = interpret(founders, context("BRCA", tags=("HER2-",)))
    assert not breast.unknown
    assert [h.gene.symbol for h in breast.hereditary] == ["BRCA1", "BRCA1", "BRCA2"]
    assert all("PVS1" in h.classification for h in breast.hereditary)
    approved = {
        tuple(d.name for d in f.drugs) for f in breast.therapeutic if f.fda_approved_for_tumour
    }
    assert {("olaparib",), ("talazoparib",)} <= approved
    prostate = interpret(founders[2:], context("PRAD"))
    assert ("olaparib",) in {
        tuple(d.name for d in f.drugs) for f in prostate.therapeutic if f.fda_approved_for_tumour
    }
    # An in-frame c. deletion is not truncating: no hereditary finding from the rule.
    in_frame = interpret(
        [variant("BRCA2", hgvs_c="c.100_102del", origin=Origin.GERMLINE)], context("BRCA")
    )
    assert not in_frame.hereditary


def test_an_approval_naming_the_alteration_leads_a_gene_level_one() -> None:
    """T790M in NSCLC: TAGRISSO names T790M; DATROWAY names "EGFR-mutated" (gene level). Both
    are Tier I-A approvals for this tumour; the one naming the alteration comes first."""
    rows = [f for f in _t790m().therapeutic if f.response is Response.SENSITIVE]
    approved = [tuple(d.name for d in f.drugs) for f in rows if f.fda_approved_for_tumour]
    assert ("datopotamab deruxtecan",) in approved
    assert approved.index(("osimertinib",)) < approved.index(("datopotamab deruxtecan",))


def test_line_specific_exclusion_is_a_note_not_resistance() -> None:
    """ICLUSIG: not indicated for newly diagnosed chronic-phase CML, indicated later: ponatinib
    stays an approved option for BCR::ABL1 CML, with the first-line exclusion stated."""
    fusion = biomarker(BiomarkerKind.FUSION, "ABL1", partner="BCR")
    result = interpret([fusion], context("CML"))
    assert ("ponatinib",) not in _regimens(result, Response.RESISTANT)
    ponatinib = _regimens(result)[("ponatinib",)]
    assert ponatinib.fda_approved_for_tumour
    assert ponatinib.context_note is not None
    assert "(ICLUSIG-CML-BCRABL1-1L-NOT): not indicated first-line" in ponatinib.context_note


def test_a_label_for_this_tumour_with_an_unstated_condition_says_so() -> None:
    """LYNPARZA and TALZENNA name germline BRCA-mutated HER2-negative breast cancer. Without a
    stated HER2 status the row is "approved for this tumour type if the label's conditions
    hold", never "another tumour type" or "off-label"; with HER2- stated it is approved."""
    brca1 = replace(variant("BRCA1", protein="E23fs"), origin=Origin.GERMLINE)
    unstated = _regimens(interpret([brca1], context("BRCA")))
    for drug in ("olaparib", "talazoparib"):
        row = unstated[(drug,)]
        assert row.regulatory_status is RegulatoryStatus.APPROVED_FOR_TUMOUR_IF, drug
        assert row.context_note is not None
        assert "HER2-" in row.context_note
    stated = _regimens(interpret([brca1], context("BRCA", tags=("HER2-",))))
    for drug in ("olaparib", "talazoparib"):
        assert stated[(drug,)].regulatory_status is RegulatoryStatus.APPROVED_FOR_TUMOUR, drug
