"""The clinical rules of the genomic cards, one behaviour per test (issue 13 items 1-2).

These hold whatever the card wording: who gets a card, which kind, how urgent, and what it must
never claim. Several encode issue 12 item 5 ("cards state only what is true"); on the code of
issue 13's start they fail, which is the point: they name the rule the card logic must meet.
Facts cited: CPIC DPYD guideline (Amstutz et al. 2018, PMID 29152729: *2A no function, *1/*1
normal metabolizer); FDA Tagrisso label (EGFR T790M, https://www.accessdata.fda.gov/drugsatfda_docs/label/2020/208065s021lbl.pdf);
ACMG SF v3.2 (PMID 37347242, BRCA1 hereditary breast and ovarian cancer).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from cds_service.cdshooks.services import BUILTIN_SERVICES
from inference.genomics import Gene, PatientContext, interpret, resolve_tumour_type
from inference.genomics.model import Variant
from integrations.fhir.variant_intake import genes_studied
from tests.cds_service.cdshooks.conftest import CdsClient
from tests.cds_service.cdshooks.test_genomic_services import (
    COLORECTAL,
    condition,
    genotype_observation,
    medication_request,
    order_sign,
    patient_view,
)

LOINC = "http://loinc.org"
NSCLC = condition("http://snomed.info/sct", "254637007")
BREAST = condition("http://hl7.org/fhir/sid/icd-10-cm", "C50.911")
HGNC = {
    "EGFR": "HGNC:3236",
    "BRAF": "HGNC:1097",
    "BRCA1": "HGNC:1100",
    "TP53": "HGNC:11998",
    "KIT": "HGNC:6342",
    "KRAS": "HGNC:6407",
    "ARAF": "HGNC:646",
    "BRCA2": "HGNC:1101",
}


def _cc(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]}


def variant(
    gene: str,
    protein: str | None = None,
    *,
    present: bool = True,
    origin: str = "somatic",
    c_hgvs: str | None = None,
    oid: str = "v1",
) -> dict[str, Any]:
    """A Genomics Reporting Variant Observation as a lab report states it (gene, HGVS, origin)."""
    components: list[dict[str, Any]] = [
        {
            "code": _cc(LOINC, "48018-6", "Gene studied"),
            "valueCodeableConcept": _cc("http://www.genenames.org", HGNC[gene], gene),
        }
    ]
    if c_hgvs:
        components.append(
            {
                "code": _cc(LOINC, "48004-6"),
                "valueCodeableConcept": _cc("http://varnomen.hgvs.org", c_hgvs),
            }
        )
    if protein:
        components.append(
            {
                "code": _cc(LOINC, "48005-3"),
                "valueCodeableConcept": _cc("http://varnomen.hgvs.org", protein),
            }
        )
    source = ("LA6683-2", "Germline") if origin == "germline" else ("LA6684-0", "Somatic")
    components.append({"code": _cc(LOINC, "48002-0"), "valueCodeableConcept": _cc(LOINC, *source)})
    value = ("LA9633-4", "Present") if present else ("LA9634-2", "Absent")
    return lab_observation(
        oid,
        _cc(LOINC, "69548-6", "Genetic variant assessment"),
        valueCodeableConcept=_cc(LOINC, *value),
        component=components,
    )


def lab_observation(oid: str, code: dict[str, Any], **members: Any) -> dict[str, Any]:
    """A final laboratory Observation of patient p1 with ``code`` and the given ``value[x]``
    and ``component`` members."""
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            _cc("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
        ],
        "code": code,
        "subject": {"reference": "Patient/p1"},
        **members,
    }


BRAF_V600E = variant("BRAF", "p.Val600Glu")
EGFR_T790M = variant("EGFR", "p.Thr790Met")


@pytest.fixture
def cds(make_cds_client: Callable[..., CdsClient], sqlite_url: str) -> CdsClient:
    return make_cds_client(services=BUILTIN_SERVICES, database_url=sqlite_url)


def cards(cds: CdsClient, service: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = cds.call(service, body)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["cards"]
    return found


def kinds(found: list[dict[str, Any]]) -> list[str]:
    return [c["source"]["topic"]["code"] for c in found]


def on_capecitabine(diplotype: str) -> dict[str, Any]:
    return patient_view(
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", diplotype)],
        medications=[medication_request("m1", "capecitabine", status="active")],
    )


def capecitabine_order(diplotype: str, observations: list[dict[str, Any]] | None = None) -> Any:
    return order_sign(
        [medication_request("mr1", "capecitabine")],
        observations=observations or [],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", diplotype)],
    )


# ------------------------------------------------------------------ pharmacogenomics (CPIC DPYD)


def test_normal_dpyd_metabolizer_on_capecitabine_gets_no_card(cds: CdsClient) -> None:
    """*1/*1 is a normal metabolizer: nothing to act on (the filter in oncology_genomics)."""
    assert cards(cds, "oncology-genomics", on_capecitabine("*1/*1")) == []


def test_normal_dpyd_metabolizer_ordering_capecitabine_gets_no_card(cds: CdsClient) -> None:
    """No pharmacogenomic card, and DPYD counts as tested (the filter in targeted_therapy_check)."""
    assert cards(cds, "targeted-therapy-check", capecitabine_order("*1/*1")) == []


def test_intermediate_metabolizer_on_capecitabine_is_critical(cds: CdsClient) -> None:
    found = cards(cds, "oncology-genomics", on_capecitabine("*1/*2A"))
    assert kinds(found)[0] == "pharmacogenomic-risk"
    assert found[0]["indicator"] == "critical"
    assert "intermediate metabolizer" in found[0]["summary"]
    assert found[0]["summary"].startswith("Current medication affected")
    assert "activity score 1" in found[0]["detail"]
    assert "cpicpgx.org" in found[0]["detail"]


def test_intermediate_metabolizer_not_on_the_drug_is_a_warning(cds: CdsClient) -> None:
    body = patient_view(
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", "*1/*2A")],
    )
    found = cards(cds, "oncology-genomics", body)
    assert kinds(found) == ["pharmacogenomic-risk", "genomic-report"]
    assert found[0]["indicator"] == "warning"
    assert not found[0]["summary"].startswith("Current medication")


def test_poor_metabolizer_order_is_critical_and_offers_removal(cds: CdsClient) -> None:
    (card,) = cards(cds, "targeted-therapy-check", capecitabine_order("*2A/*2A"))
    assert card["indicator"] == "critical"
    assert "poor metabolizer" in card["summary"]
    assert card["selectionBehavior"] == "at-most-one"
    (suggestion,) = card["suggestions"]
    assert suggestion["actions"] == [
        {
            "type": "delete",
            "description": "Remove the draft capecitabine order",
            "resourceId": "MedicationRequest/mr1",
        }
    ]


def test_intermediate_metabolizer_order_reduces_the_dose_without_removal(cds: CdsClient) -> None:
    """CPIC: intermediate metabolizer → reduce the starting dose (not "avoid"): no removal."""
    (card,) = cards(cds, "targeted-therapy-check", capecitabine_order("*1/*2A"))
    assert card["indicator"] == "critical"
    assert "suggestions" not in card
    assert "selectionBehavior" not in card  # CDS Hooks 2.0: only with suggestions
    assert "Reduce" in card["detail"] or "reduce" in card["detail"]


def test_a_normal_gene_does_not_hide_an_abnormal_one_for_the_same_drug(cds: CdsClient) -> None:
    """Thiopurines depend on TPMT and NUDT15 (CPIC 2018, PMID 30447069): a normal TPMT result
    listed first still leaves the NUDT15 intermediate metabolizer card."""
    body = order_sign(
        [medication_request("mr1", "mercaptopurine")],
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("TPMT", "*1/*1"), genotype_observation("NUDT15", "*1/*3")],
    )
    (card,) = cards(cds, "targeted-therapy-check", body)
    assert card["summary"].startswith("NUDT15 *1/*3 (intermediate metabolizer)")
    assert card["indicator"] == "critical"
    # NUDT15 phenotypes have no activity score (CPIC function model): none is printed
    assert card["detail"].startswith(r"**NUDT15 \*1/\*3**: NUDT15 intermediate metabolizer." "\n\n")


def test_another_drug_s_pharmacogene_does_not_hide_this_drug_s(cds: CdsClient) -> None:
    """A TPMT poor metabolizer (thiopurines) listed before DPYD: capecitabine's DPYD card stays."""
    body = order_sign(
        [medication_request("mr1", "capecitabine")],
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[
            genotype_observation("TPMT", "*3A/*3A"),
            genotype_observation("DPYD", "*2A/*2A"),
        ],
    )
    (card,) = cards(cds, "targeted-therapy-check", body)
    assert card["summary"].startswith("DPYD *2A/*2A")


def test_untested_pharmacogene_asks_for_the_test(cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr1", "capecitabine")], observations=[], conditions=[COLORECTAL]
    )
    (card,) = cards(cds, "targeted-therapy-check", body)
    assert kinds([card]) == ["missing-biomarker-test"]
    assert card["summary"] == "No DPYD result on file; capecitabine depends on it"
    assert "CPIC dosing by DPYD genotype" in card["detail"]


# ------------------------------------------------------------------ required tests


def test_gene_with_a_negative_result_counts_as_studied() -> None:
    """An Absent (LA9634-2) EGFR result is still an EGFR result: EGFR was studied."""
    assert genes_studied([variant("EGFR", present=False)]) == {"EGFR"}
    assert genes_studied([variant("EGFR", "p.Thr790Met")]) == {"EGFR"}
    assert genes_studied([{"resourceType": "Condition", "component": []}]) == set()


def _gene_component(value: dict[str, Any], code: str = "48018-6") -> dict[str, Any]:
    return {"code": _cc(LOINC, code), "valueCodeableConcept": value}


def test_genes_studied_reads_the_gene_component_only() -> None:
    """48018-6 "Gene studied": HGNC symbol as a coding's display or as the concept's text,
    upper-cased; other components and non-Observation resources name no gene studied."""
    observation = {"resourceType": "Observation", "component": []}
    by_text = {**observation, "component": [_gene_component({"text": "kras"})]}
    by_display = {
        **observation,
        "component": [_gene_component(_cc("http://www.genenames.org", "HGNC:1097", "braf"))],
    }
    other_component = {
        **observation,
        "component": [_gene_component({"text": "TP53"}, code="48005-3")],
    }
    not_observation = {**by_text, "resourceType": "ServiceRequest"}
    assert genes_studied([by_text]) == {"KRAS"}
    assert genes_studied([by_display]) == {"BRAF"}
    assert genes_studied([other_component, not_observation]) == set()
    assert genes_studied([by_text, by_display, other_component]) == {"KRAS", "BRAF"}
    # what is skipped does not end the reading: later resources and components still count
    assert genes_studied([not_observation, other_component, by_display]) == {"BRAF"}
    both = {
        **observation,
        "component": [
            _gene_component({"text": "TP53"}, code="48005-3"),
            _gene_component({"text": "kras"}),
        ],
    }
    assert genes_studied([both]) == {"KRAS"}
    no_value = {**observation, "component": [{"code": _cc(LOINC, "48018-6")}]}
    no_code = {**observation, "component": [{"valueCodeableConcept": {"text": "ALK"}}]}
    assert genes_studied([no_value, no_code, {"resourceType": "Observation"}]) == set()


def test_negative_egfr_test_suppresses_the_missing_test_card(cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr1", "osimertinib")],
        observations=[variant("EGFR", present=False)],
        conditions=[NSCLC],
    )
    assert "missing-biomarker-test" not in kinds(cards(cds, "targeted-therapy-check", body))


def test_no_egfr_result_asks_for_the_egfr_test(cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr1", "osimertinib")], observations=[], conditions=[NSCLC]
    )
    (card,) = cards(cds, "targeted-therapy-check", body)
    assert card["indicator"] == "warning"
    assert card["summary"] == "No EGFR result on file; osimertinib depends on it"
    order = card["suggestions"][0]["actions"][0]["resource"]
    assert order["resourceType"] == "ServiceRequest"
    assert order["code"] == {"text": "EGFR testing"}
    assert order["subject"] == {"reference": "Patient/p1"}


def test_unknown_variant_is_no_card_but_counts_as_a_result(cds: CdsClient) -> None:
    unknown = variant("EGFR", "p.Ala1118Thr")
    view = patient_view(observations=[unknown], conditions=[NSCLC])
    assert cards(cds, "oncology-genomics", view) == []
    order = order_sign(
        [medication_request("mr1", "osimertinib")], observations=[unknown], conditions=[NSCLC]
    )
    assert cards(cds, "targeted-therapy-check", order) == []


# ------------------------------------------------------------------ resistance and support


def test_resistance_to_an_ordered_single_agent_is_critical(cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr1", "panitumumab")],
        observations=[BRAF_V600E],
        conditions=[COLORECTAL],
    )
    (card,) = cards(cds, "targeted-therapy-check", body)
    assert card["indicator"] == "critical"
    assert card["summary"] == "BRAF V600E predicts resistance to panitumumab"
    labels = [s["label"] for s in card["suggestions"]]
    assert 1 <= len(labels) <= 3
    assert all("panitumumab" not in label for label in labels)
    assert all(s["actions"][0]["type"] == "delete" for s in card["suggestions"])


def test_supported_order_is_info(cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr1", "osimertinib")], observations=[EGFR_T790M], conditions=[NSCLC]
    )
    (card,) = cards(cds, "targeted-therapy-check", body)
    assert card["indicator"] == "info"
    assert card["summary"].startswith("osimertinib is supported by EGFR T790M (Tier I")
    assert "FDA-approved for this tumour type" in card["detail"]


def test_regimen_resistance_is_no_current_medication_card_for_one_of_its_drugs(
    cds: CdsClient,
) -> None:
    """Issue 12 item 5: on capecitabine alone, evidence about bevacizumab + capecitabine +
    oxaliplatin is a report row, not a card saying the patient is on that regimen."""
    body = patient_view(
        observations=[BRAF_V600E],
        conditions=[COLORECTAL],
        medications=[medication_request("m1", "capecitabine", status="active")],
    )
    found = cards(cds, "oncology-genomics", body)
    current = [c for c in found if c["source"]["topic"]["code"] == "resistance-current-medication"]
    assert current == [], [c["summary"] for c in current]


def test_regimen_resistance_is_no_order_card_for_one_of_its_drugs(cds: CdsClient) -> None:
    """Issue 12 item 5 (order-sign): a regimen's evidence is not a claim about one of its drugs."""
    found = cards(cds, "targeted-therapy-check", capecitabine_order("*1/*1", [BRAF_V600E]))
    assert "resistance" not in kinds(found), [c["summary"] for c in found]


def test_single_agent_current_medication_resistance_is_critical(cds: CdsClient) -> None:
    body = patient_view(
        observations=[BRAF_V600E],
        conditions=[COLORECTAL],
        medications=[medication_request("m1", "cetuximab", status="active")],
    )
    found = cards(cds, "oncology-genomics", body)
    assert found[0]["indicator"] == "critical"
    assert found[0]["summary"] == "BRAF V600E predicts resistance to current cetuximab"
    # Issue 12 item 5: the patient takes cetuximab alone, not "cetuximab + FOLFOX-4".
    current = [c["summary"] for c in found if "current" in c["summary"]]
    assert current == ["BRAF V600E predicts resistance to current cetuximab"]


# ------------------------------------------------------------------ germline vs somatic


#: BRCA1 185delAG (c.68_69delAG, p.Glu23fs), the Ashkenazi founder frameshift.
BRCA1_PROTEIN = "p.Glu23fs"
BRCA1_C = "NM_007294.4:c.68_69del"


def test_germline_loss_of_function_gives_a_hereditary_card_with_a_referral(
    cds: CdsClient,
) -> None:
    body = patient_view(
        observations=[variant("BRCA1", BRCA1_PROTEIN, origin="germline", c_hgvs=BRCA1_C)],
        conditions=[BREAST],
    )
    found = cards(cds, "oncology-genomics", body)
    # The FDA layer (issue 12) adds the PARP-inhibitor card for germline BRCA1 in breast cancer.
    assert kinds(found) == ["actionable-finding", "hereditary-risk", "genomic-report"]
    card = found[1]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Germline BRCA1 E23fs")
    assert "Hereditary breast and ovarian cancer syndrome" in card["detail"]
    referral = card["suggestions"][0]["actions"][0]["resource"]
    assert referral["resourceType"] == "ServiceRequest"
    assert referral["status"] == "draft"
    assert referral["subject"] == {"reference": "Patient/p1"}


def test_somatic_variant_gives_no_hereditary_card(cds: CdsClient) -> None:
    body = patient_view(
        observations=[variant("BRCA1", BRCA1_PROTEIN, origin="somatic", c_hgvs=BRCA1_C)],
        conditions=[BREAST],
    )
    assert "hereditary-risk" not in kinds(cards(cds, "oncology-genomics", body))


def test_no_actionable_finding_gives_no_cards(cds: CdsClient) -> None:
    body = patient_view(observations=[variant("TP53", "p.Arg175Cys")], conditions=[COLORECTAL])
    response = cds.call("oncology-genomics", body)
    assert response.json() == {"cards": []}


# ------------------------------------------------------------------ what a card may say


def test_conflicting_evidence_offers_no_drug_the_variant_makes_resistant(cds: CdsClient) -> None:
    """Issue 12 item 5: EGFR T790M in NSCLC: erlotinib and afatinib have Tier I resistance
    evidence, so no row offers them as sensitive at a lower level."""
    found = cards(
        cds, "oncology-genomics", patient_view(observations=[EGFR_T790M], conditions=[NSCLC])
    )
    card = found[0]
    assert card["source"]["topic"]["code"] == "actionable-finding"
    assert "osimertinib" in card["summary"]
    sensitive_rows = [
        row for row in card["detail"].splitlines() if row.startswith("|") and "| sensitive |" in row
    ]
    offered = " ".join(sensitive_rows)
    assert "erlotinib" not in offered
    assert "afatinib" not in offered


def test_no_doubled_words_in_a_summary(cds: CdsClient) -> None:
    """Issue 12 item 5: "DPYD DPYD intermediate metabolizer" is a doubled word."""
    found = cards(cds, "oncology-genomics", on_capecitabine("*1/*2A"))
    for card in found:
        assert not re.search(r"\b(\w+) \1\b", card["summary"]), card["summary"]


def test_star_alleles_are_escaped_in_markdown(cds: CdsClient) -> None:
    """Issue 12 item 5: "*2A" in GitHub Flavored Markdown opens emphasis unless escaped."""
    found = cards(cds, "oncology-genomics", on_capecitabine("*1/*2A"))
    detail = found[0]["detail"]
    assert "\\*1/\\*2A" in detail, detail


def test_a_therapy_card_is_short(cds: CdsClient) -> None:
    """Issue 12 item 5: at most about five therapy rows on a card; the rest is in the report."""
    body = patient_view(observations=[BRAF_V600E], conditions=[COLORECTAL])
    card = next(
        c
        for c in cards(cds, "oncology-genomics", body)
        if c["source"]["topic"]["code"] == "actionable-finding"
    )
    rows = [r for r in card["detail"].splitlines() if r.startswith("| ") and "Tier" in r]
    assert 1 <= len(rows) - 1 <= 5, len(rows) - 1  # minus the header row


def test_no_alternative_is_a_drug_the_variant_makes_resistant(cds: CdsClient) -> None:
    """Erlotinib ordered with EGFR T790M: afatinib has Tier I resistance evidence for T790M
    (CIViC EID1863), so it is no "order instead" suggestion, whatever its weaker support."""
    body = order_sign(
        [medication_request("mr1", "erlotinib")], observations=[EGFR_T790M], conditions=[NSCLC]
    )
    (card,) = cards(cds, "targeted-therapy-check", body)
    labels = [s["label"] for s in card["suggestions"]]
    assert labels[0] == "Order osimertinib instead (Tier I - Level A)"
    assert not any("afatinib" in label for label in labels), labels


def test_a_card_summary_names_only_options_at_the_tier_it_states(cds: CdsClient) -> None:
    """Germline BRCA1 in breast cancer: the summary says Tier I-A, so it names olaparib and
    talazoparib (breast labels), never the prostate label's abiraterone + niraparib (Tier II)."""
    body = patient_view(
        observations=[variant("BRCA1", BRCA1_PROTEIN, origin="germline", c_hgvs=BRCA1_C)],
        conditions=[BREAST],
    )
    card = cards(cds, "oncology-genomics", body)[0]
    assert card["summary"].startswith("BRCA1 E23fs (Tier I - Level A): ")
    assert "olaparib" in card["summary"]
    assert "abiraterone" not in card["summary"]
    assert "abiraterone + niraparib | sensitive | Tier II - Level C" in card["detail"]


# ------------------------------------------------------------------ issue 13 item 2: mutants


def test_a_supported_single_agent_card_names_the_variant_drug_and_tier(cds: CdsClient) -> None:
    """TAGRISSO (osimertinib) is FDA-approved for EGFR T790M NSCLC: an info card of kind
    "supported-biomarker" that names variant, drug, tier and regulatory status."""
    body = order_sign(
        [medication_request("mr1", "osimertinib")], observations=[EGFR_T790M], conditions=[NSCLC]
    )
    (card,) = cards(cds, "targeted-therapy-check", body)
    assert card["summary"] == "osimertinib is supported by EGFR T790M (Tier I - Level A)"
    assert kinds([card]) == ["supported-biomarker"]
    assert card["source"]["topic"]["display"].startswith("Biomarker-supported therapy (KB ")
    assert card["detail"].startswith(
        "**EGFR T790M** supports **osimertinib** (Tier I - Level A; "
        "FDA-approved for this tumour type; "
    )
    assert "None" not in card["detail"]


def test_an_order_for_one_drug_of_a_labelled_regimen_names_the_regimen(cds: CdsClient) -> None:
    """BRAFTOVI (encorafenib) is labelled with cetuximab for BRAF V600E colorectal cancer: the
    evidence supports the combination, not encorafenib alone, and the card says so (the KB
    names a regimen's drugs in alphabetical order)."""
    body = order_sign(
        [medication_request("mr1", "encorafenib")],
        observations=[BRAF_V600E],
        conditions=[COLORECTAL],
    )
    supported = [c for c in cards(cds, "targeted-therapy-check", body) if c["indicator"] == "info"]
    (card,) = supported
    assert card["summary"] == (
        "BRAF V600E supports cetuximab + encorafenib (Tier I - Level A), not encorafenib alone"
    )
    assert card["detail"].startswith(
        "**BRAF V600E** supports the regimen **cetuximab + encorafenib**, of which encorafenib "
        "is one drug; the evidence is not about encorafenib alone (Tier I - Level A; "
    )
    # the label's indication text follows as its own paragraph, no placeholder
    assert "\n\nFDA indication: " in card["detail"]
    assert "None" not in card["detail"]


def test_a_required_test_of_several_genes_names_each_gene(cds: CdsClient) -> None:
    """LYNPARZA (olaparib) in breast cancer is indicated for germline BRCA1 or BRCA2 mutations:
    with neither gene tested, the card asks for BRCA1/BRCA2 testing."""
    body = order_sign([medication_request("mr1", "olaparib")], observations=[], conditions=[BREAST])
    (card,) = cards(cds, "targeted-therapy-check", body)
    assert card["summary"] == "No BRCA1/BRCA2 result on file; olaparib depends on it"
    order = card["suggestions"][0]["actions"][0]["resource"]
    assert order["code"] == {"text": "BRCA1/BRCA2 testing"}


def test_current_regimen_resistance_says_the_patient_takes_every_drug(cds: CdsClient) -> None:
    """TAFINLAR + MEKINIST are not indicated in colorectal cancer (label, Limitations of Use):
    a BRAF V600E colorectal patient on both drugs gets the critical card for the regimen."""
    body = patient_view(
        observations=[BRAF_V600E],
        conditions=[COLORECTAL],
        medications=[
            medication_request("m1", "dabrafenib", status="active"),
            medication_request("m2", "trametinib", status="active"),
        ],
    )
    found = cards(cds, "oncology-genomics", body)
    critical = [c for c in found if c["source"]["topic"]["code"] == "resistance-current-medication"]
    regimen = [c for c in critical if "dabrafenib + trametinib" in c["summary"]]
    assert regimen, [c["summary"] for c in critical]
    assert (
        "which the patient is currently prescribed (every drug of the regimen)"
        in (regimen[0]["detail"])
    )
    single = [c for c in critical if c not in regimen]
    assert all("(every drug of the regimen)" not in c["detail"] for c in single)


def test_a_supported_card_without_a_context_note_is_claim_evidence_disclaimer(
    cds: CdsClient,
) -> None:
    """Vemurafenib for BRAF V600E non-small cell lung cancer (VE-BASKET, Hyman et al. 2015,
    PMID 26287849; CIViC EID1574, level B; ZELBORAF is FDA-approved in melanoma, not here): a
    CIViC row with no context note. The card says the claim, the evidence and the disclaimer,
    with no empty note paragraph and no placeholder."""
    body = order_sign(
        [medication_request("mr1", "vemurafenib")], observations=[BRAF_V600E], conditions=[NSCLC]
    )
    (card,) = cards(cds, "targeted-therapy-check", body)
    assert card["summary"] == "vemurafenib is supported by BRAF V600E (Tier I - Level B)"
    claim, evidence, *rest = card["detail"].split("\n\n")
    assert claim == (
        "**BRAF V600E** supports **vemurafenib** (Tier I - Level B; FDA-approved in another "
        "tumour type; Non-Small Cell Lung Cancer)."
    )
    assert evidence.startswith("Evidence: [CIViC EID1574 (level B)](")
    assert "[PMID 26287849](https://pubmed.ncbi.nlm.nih.gov/26287849/)" in evidence
    assert rest == ["_Decision support, not a diagnosis. Verify against the full report._"]


# ------------------------------------------------------------------ patient-view card layout
# (issue 13 item 2: mutants of oncology_genomics that no test killed)

KIT_D816V = variant("KIT", "p.Asp816Val")
SYSTEMIC_MASTOCYTOSIS = condition("http://hl7.org/fhir/sid/icd-10-cm", "D47.02")
MELANOMA = condition("http://hl7.org/fhir/sid/icd-10-cm", "C43.9")


def _actionable(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in found if c["source"]["topic"]["code"] == "actionable-finding"]


def _therapy_table(detail: str) -> list[list[str]]:
    """The cells of a therapy card's table rows (header and ruler left out)."""
    rows = [r for r in detail.splitlines() if r.startswith("| ") and not r.startswith("| Ther")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_two_variants_of_one_gene_share_its_card_and_genes_keep_their_order(
    cds: CdsClient,
) -> None:
    """EGFR L858R and T790M in NSCLC (TAGRISSO label: first line for L858R, later lines for
    T790M) are one EGFR card, not one per variant; with BRAF V600E (BRAFTOVI + MEKTOVI label,
    NSCLC) both are Tier I cards, and cards of one tier come in gene order."""
    body = patient_view(
        observations=[
            variant("EGFR", "p.Leu858Arg", oid="v1"),
            variant("EGFR", "p.Thr790Met", oid="v2"),
            variant("BRAF", "p.Val600Glu", oid="v3"),
        ],
        conditions=[NSCLC],
    )
    summaries = [c["summary"] for c in _actionable(cards(cds, "oncology-genomics", body))]
    assert len(summaries) == 2, summaries
    assert summaries[0].startswith("BRAF V600E (Tier I - Level A): "), summaries
    assert summaries[1].startswith("EGFR L858R (Tier I - Level A): "), summaries


def test_biomarkers_without_a_gene_get_a_card_each_under_their_own_label(
    cds: CdsClient,
) -> None:
    """TMB 14 mutations/Mb and MSI-high in colorectal cancer (KEYTRUDA label: TMB-H >= 10
    mut/Mb in solid tumours; MSI-H/dMMR colorectal cancer): findings of no gene are grouped and
    labelled by the biomarker itself, one card each."""
    tmb = lab_observation("t1", _cc(LOINC, "94076-7"), valueQuantity={"value": 14})
    msi = lab_observation(
        "t2", _cc(LOINC, "81695-9"), valueCodeableConcept=_cc(LOINC, "LA26203-2", "MSI-H")
    )
    body = patient_view(observations=[tmb, msi], conditions=[COLORECTAL])
    found = _actionable(cards(cds, "oncology-genomics", body))
    assert len(found) == 2, [c["summary"] for c in found]
    (tmb_card,) = [c for c in found if c["summary"].startswith("TMB ")]
    assert tmb_card["summary"] == "TMB 14 mut/Mb (Tier I - Level A): pembrolizumab"
    assert tmb_card["detail"].startswith("**TMB 14 mut/Mb** (Tier I - Level A)")
    assert any(c["summary"].startswith("MSI") for c in found), [c["summary"] for c in found]


def test_a_pharmacogenomic_card_for_a_drug_not_taken_has_no_lead_and_no_score(
    cds: CdsClient,
) -> None:
    """UGT1A1 *28/*28, not on irinotecan (DPWG UGT1A1-irinotecan, Hulshof et al. 2023, PMID
    36443464: poor metabolizer; DPWG gives UGT1A1 no activity score): a warning whose summary
    does not say "current medication" and whose phenotype line has no activity score."""
    body = patient_view(
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("UGT1A1", "*28/*28")],
    )
    (card,) = [
        c
        for c in cards(cds, "oncology-genomics", body)
        if c["source"]["topic"]["code"] == "pharmacogenomic-risk"
    ]
    assert card["indicator"] == "warning"
    assert card["summary"] == "UGT1A1 poor metabolizer: irinotecan"
    assert card["detail"].split("\n\n")[0] == "**UGT1A1 \\*28/\\*28**: UGT1A1 poor metabolizer."


def test_a_card_lists_each_row_once_with_lower_tier_resistance_last(cds: CdsClient) -> None:
    """KIT D816V in systemic mastocytosis: midostaurin (CIViC EID1725, level B) is the option;
    imatinib and dasatinib resistance (CIViC EID7465, level C, any cancer) is Tier II, so it
    follows the options; each row appears once."""
    body = patient_view(observations=[KIT_D816V], conditions=[SYSTEMIC_MASTOCYTOSIS])
    (card,) = _actionable(cards(cds, "oncology-genomics", body))
    table = _therapy_table(card["detail"])
    assert [(row[0], row[1]) for row in table] == [
        ("midostaurin", "sensitive"),
        ("dasatinib", "resistant"),
        ("imatinib", "resistant"),
    ], table
    assert card["summary"] == "KIT D816V (Tier I - Level B): midostaurin"
    # Every row is on the card: nothing is left to the report, so no count and no link; and
    # no context note, so no empty paragraph for one.
    assert "more in the report" not in card["detail"]
    assert not card.get("links")
    assert "\n\n\n" not in card["detail"]


def test_a_card_states_two_resolved_conflicts_and_counts_the_rest(cds: CdsClient) -> None:
    """BRAF V600K in colorectal cancer: CIViC's colorectal resistance (AID10, AID11, Tier I)
    outweighs melanoma sensitivity for several BRAF-inhibitor regimens. The card states two
    resolved conflicts, each with at most two sources and how many more there are, and says how
    many more conflicts the report holds. The counts are taken from the interpretation's rows
    that the card's table shows, not from the card code."""
    body = patient_view(observations=[variant("BRAF", "p.Val600Lys")], conditions=[COLORECTAL])
    (card,) = _actionable(cards(cds, "oncology-genomics", body))
    lines = card["detail"].splitlines()
    stated = [line for line in lines if line.startswith("- Conflicting evidence for ")]
    assert len(stated) == 2, stated
    tumour = resolve_tumour_type("http://hl7.org/fhir/sid/icd-10-cm|C18.9")
    interpretation = interpret(
        [Variant(gene=Gene("BRAF"), protein_change="V600K")], PatientContext(tumour_type=tumour)
    )
    unshown = list(interpretation.therapeutic)
    shown = []
    for therapy, response, tier, _, disease, _ in _therapy_table(card["detail"]):
        row = next(
            f
            for f in unshown
            if (" + ".join(d.name for d in f.drugs), f.response.value, f.tier.label, f.disease)
            == (therapy, response, tier, disease)
        )
        unshown.remove(row)
        shown.append(row)
    conflicts = {" + ".join(d.name for d in c.drugs): c for row in shown for c in row.conflicts}
    for line in stated:
        regimen = line.removeprefix("- Conflicting evidence for ").split(" resolved: ")[0]
        sources = len(conflicts[regimen].evidence)
        cited = line.split(". ", 1)[1].split("; ")
        assert len([s for s in cited if not s.startswith("and ")]) == min(sources, 2), line
        assert line.endswith(f"; and {sources - 2} more") == (sources > 2), line
    total = sum(len(row.conflicts) for row in shown)
    assert total > 2
    assert f"- {total - 2} more resolved conflict(s) in the report." in lines


def test_a_tier_one_card_comes_before_a_tier_two_card_whatever_the_gene(cds: CdsClient) -> None:
    """NSCLC with EGFR L858R (TAGRISSO label: Tier I) and ARAF S214C (sorafenib, CIViC EID17
    and EID40, case reports: Tier II): the Tier I card (warning) leads, though ARAF sorts
    first by name; the Tier II card is info."""
    body = patient_view(
        observations=[variant("ARAF", "p.Ser214Cys", oid="v1"), variant("EGFR", "p.Leu858Arg")],
        conditions=[NSCLC],
    )
    found = _actionable(cards(cds, "oncology-genomics", body))
    assert [(c["summary"].split(" ")[0], c["indicator"]) for c in found] == [
        ("EGFR", "warning"),
        ("ARAF", "info"),
    ], [c["summary"] for c in found]


def test_a_card_summary_names_at_most_three_options(cds: CdsClient) -> None:
    """BRAF V600E melanoma has more than three Tier I-A options (the ZELBORAF, TAFINLAR +
    MEKINIST, BRAFTOVI + MEKTOVI and COTELLIC labels): the summary names three, the table the
    rest."""
    body = patient_view(observations=[BRAF_V600E], conditions=[MELANOMA])
    (card,) = _actionable(cards(cds, "oncology-genomics", body))
    prefix = "BRAF V600E (Tier I - Level A): "
    assert card["summary"].startswith(prefix), card["summary"]
    assert len(card["summary"][len(prefix) :].split("; ")) == 3, card["summary"]


def test_one_row_left_to_the_report_is_counted_and_linked(cds: CdsClient) -> None:
    """EGFR G719S NSCLC has six therapy rows (GILOTRIF label, uncommon EGFR mutations; CIViC
    EID1736 and others): the card shows five, says one more is in the report and links it."""
    body = patient_view(observations=[variant("EGFR", "p.Gly719Ser")], conditions=[NSCLC])
    (card,) = _actionable(cards(cds, "oncology-genomics", body))
    assert len(_therapy_table(card["detail"])) == 5
    assert "\n\n1 more in the report.\n\n" in card["detail"], card["detail"]
    assert [link["label"] for link in card["links"]] == ["1 more in the report"]


def test_a_gene_with_only_resistance_rows_hides_no_other_gene(cds: CdsClient) -> None:
    """NSCLC with KRAS G12D and ARAF S214C: KRAS G12D speaks only of resistance (CIViC EID35,
    Pao et al. 2005, PMID 15696205: no response to EGFR inhibitors), which is no card of its
    own, and its Tier I rows rank before ARAF's; the ARAF card (sorafenib, CIViC EID17 and
    EID40, Tier II) is still given."""
    body = patient_view(
        observations=[variant("KRAS", "p.Gly12Asp", oid="v1"), variant("ARAF", "p.Ser214Cys")],
        conditions=[NSCLC],
    )
    found = _actionable(cards(cds, "oncology-genomics", body))
    assert [c["summary"] for c in found] == ["ARAF S214C (Tier II - Level C): sorafenib"]


def test_patient_view_cards_come_most_important_first(cds: CdsClient) -> None:
    """The order the service documents: a current medication's pharmacogenomic risk (DPYD
    *1/*2A on capecitabine, CPIC: intermediate metabolizer, critical), therapy cards (BRAF
    V600E Tier I, then germline BRCA1's PARP-inhibitor rows, Tier II here), hereditary risk
    (germline BRCA1 loss of function, ACMG SF), other pharmacogenomic risks (UGT1A1 *28/*28,
    no irinotecan taken, DPWG), then the report."""
    body = patient_view(
        observations=[
            variant("BRAF", "p.Val600Glu", oid="v1"),
            variant("BRCA1", BRCA1_PROTEIN, origin="germline", c_hgvs=BRCA1_C, oid="v2"),
        ],
        conditions=[COLORECTAL],
        genotypes=[
            genotype_observation("UGT1A1", "*28/*28"),
            genotype_observation("DPYD", "*1/*2A"),
        ],
        medications=[medication_request("m1", "capecitabine", status="active")],
    )
    found = cards(cds, "oncology-genomics", body)
    assert [(c["source"]["topic"]["code"], c["summary"].split(" ")[0]) for c in found] == [
        ("pharmacogenomic-risk", "Current"),
        ("actionable-finding", "BRAF"),
        ("actionable-finding", "BRCA1"),
        ("hereditary-risk", "Germline"),
        ("pharmacogenomic-risk", "UGT1A1"),
        ("genomic-report", "Genomic"),
    ], [c["summary"] for c in found]


# ------------------------------------------------------------------ order-sign / order-select
# (issue 13 item 2: mutants of targeted_therapy_check that no test killed)


def _service_request(rid: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "code": {"text": "CT chest"},
        "subject": {"reference": "Patient/p1"},
    }


def test_an_order_sign_with_no_medication_order_gives_no_cards(cds: CdsClient) -> None:
    """A signed imaging order is none of this service's business: ``{"cards": []}``, the CDS
    Hooks 2.0 answer for nothing to say."""
    body = order_sign([_service_request("sr1")], observations=[], conditions=[COLORECTAL])
    response = cds.call("targeted-therapy-check", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


def test_a_draft_that_is_no_medication_order_does_not_end_the_check(cds: CdsClient) -> None:
    """A ServiceRequest signed before capecitabine: the capecitabine order of a DPYD *2A/*2A
    patient (CPIC: poor metabolizer, avoid) still gets its critical card."""
    body = order_sign(
        [_service_request("sr1"), medication_request("mr1", "capecitabine")],
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", "*2A/*2A")],
    )
    assert kinds(cards(cds, "targeted-therapy-check", body)) == ["pharmacogenomic-risk"]


def test_order_select_looks_at_a_selection_listed_after_an_unselected_draft(
    cds: CdsClient,
) -> None:
    """order-select: only the selected orders are checked (CDS Hooks 2.0 ``selections``),
    wherever they stand among the drafts. Capecitabine is selected, panitumumab is not."""
    body = order_sign(
        [medication_request("mr1", "panitumumab"), medication_request("mr2", "capecitabine")],
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", "*2A/*2A")],
        hook="order-select",
    )
    body["context"]["selections"] = ["MedicationRequest/mr2"]
    found = cards(cds, "targeted-therapy-check-select", body)
    assert kinds(found) == ["pharmacogenomic-risk"], [c["summary"] for c in found]
    assert "capecitabine" in found[0]["summary"]


def test_order_sign_checks_every_draft_whatever_selections_it_carries(cds: CdsClient) -> None:
    """``selections`` belongs to order-select; on order-sign every draft is signed, so every
    draft is checked even if an EHR sends the member."""
    body = order_sign(
        [medication_request("mr1", "panitumumab"), medication_request("mr2", "capecitabine")],
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", "*2A/*2A")],
    )
    body["context"]["selections"] = ["MedicationRequest/mr1"]
    summaries = [c["summary"] for c in cards(cds, "targeted-therapy-check", body)]
    assert any("capecitabine" in s for s in summaries), summaries


def test_unreadable_observations_are_a_warning_on_order_sign(cds: CdsClient) -> None:
    """A variant Observation without components cannot be read: the order check says so (an
    integration problem, not a clinical finding) instead of checking against nothing."""
    broken = {**variant("BRAF", "p.Val600Glu"), "component": []}
    body = order_sign(
        [medication_request("mr1", "vemurafenib")], observations=[broken], conditions=[NSCLC]
    )
    found = cards(cds, "targeted-therapy-check", body)
    unreadable = [c for c in found if c["source"]["topic"]["code"] == "unreadable-genomic-data"]
    assert len(unreadable) == 1, [c["summary"] for c in found]
    assert unreadable[0]["indicator"] == "warning"
    assert "Observation/v1" in unreadable[0]["detail"]


def test_resistance_with_no_supported_alternative_states_none(cds: CdsClient) -> None:
    """Cetuximab ordered for KRAS G12A colorectal cancer (ERBITUX label: not indicated for
    RAS-mutant colorectal cancer): critical, and with no option for this patient the card has
    no alternatives paragraph and no suggestion."""
    body = order_sign(
        [medication_request("mr1", "cetuximab")],
        observations=[variant("KRAS", "p.Gly12Ala")],
        conditions=[COLORECTAL],
    )
    (card,) = [
        c for c in cards(cds, "targeted-therapy-check", body) if c["indicator"] == "critical"
    ]
    assert card["summary"] == "KRAS G12A predicts resistance to cetuximab"
    claim, evidence, *rest = card["detail"].split("\n\n")
    assert claim.startswith("**KRAS G12A** predicts **resistance** to **cetuximab** (Tier I")
    assert evidence.startswith("Evidence: ")
    assert rest == ["_Decision support, not a diagnosis. Verify against the full report._"]
    assert not card.get("suggestions")


def test_resistance_of_a_whole_ordered_regimen_names_the_regimen(cds: CdsClient) -> None:
    """Dabrafenib and trametinib ordered together for BRAF V600E colorectal cancer (TAFINLAR
    label, limitation of use: not indicated for colorectal cancer, intrinsic resistance to BRAF
    inhibition): each order's card says the evidence is about the regimen, all of it ordered;
    a single-agent resistance card says no such thing (previous test)."""
    body = order_sign(
        [medication_request("mr1", "dabrafenib"), medication_request("mr2", "trametinib")],
        observations=[BRAF_V600E],
        conditions=[COLORECTAL],
    )
    critical = [
        c for c in cards(cds, "targeted-therapy-check", body) if c["indicator"] == "critical"
    ]
    assert len(critical) == 2, [c["summary"] for c in critical]
    for card, drug in zip(critical, ("dabrafenib", "trametinib"), strict=True):
        assert card["summary"] == f"BRAF V600E predicts resistance to {drug}"
        assert card["detail"].startswith(
            f"**BRAF V600E** predicts **resistance** to **{drug}** (the evidence is about "
            "dabrafenib + trametinib, all of it ordered) (Tier I - Level A; "
        ), card["detail"]


def test_a_resistance_card_is_not_followed_by_a_missing_test_card(cds: CdsClient) -> None:
    """Erlotinib ordered for KRAS G12C NSCLC with no EGFR result (CIViC EID35, Pao et al. 2005,
    PMID 15696205: KRAS-mutant NSCLC does not respond to erlotinib): the resistance card is the
    answer; "no EGFR result on file" is asked only when nothing on file speaks to the drug."""
    body = order_sign(
        [medication_request("mr1", "erlotinib")],
        observations=[variant("KRAS", "p.Gly12Cys")],
        conditions=[NSCLC],
    )
    found = cards(cds, "targeted-therapy-check", body)
    assert [c["summary"] for c in found] == ["KRAS G12C predicts resistance to erlotinib"]


def test_a_draft_without_a_string_id_gets_no_removal_suggestion(cds: CdsClient) -> None:
    """A poor metabolizer's capecitabine draft (CPIC: avoid) whose ``id`` is a number, not a
    FHIR id: the critical card stands, but no suggestion deletes a resource it cannot name."""
    order = {**medication_request("mr1", "capecitabine"), "id": 5}
    body = order_sign(
        [order],
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", "*2A/*2A")],
    )
    (card,) = cards(cds, "targeted-therapy-check", body)
    assert card["indicator"] == "critical"
    assert not card.get("suggestions"), card["suggestions"]


def test_the_report_card_s_analysis_is_audited_with_the_call(cds: CdsClient) -> None:
    """The report card stores the analysis its link opens: ``analysis.create`` names it with
    the call's hook instance and request id, and the call's own record links it as the report
    (compliance reviews a chart's genomic reports by either)."""
    body = patient_view(observations=[KIT_D816V], conditions=[SYSTEMIC_MASTOCYTOSIS])
    found = cards(cds, "oncology-genomics", body)
    (report,) = [c for c in found if c["source"]["topic"]["code"] == "genomic-report"]
    analysis_id = report["links"][0]["url"].split("?")[0].rsplit("/", 1)[1]
    (created,) = cds.audit_rows("analysis.create")
    (call,) = cds.audit_rows("cds-hooks.call")
    assert created.entities == [{"type": "Analysis", "id": analysis_id}]
    assert created.hook_instance == body["hookInstance"]
    assert created.request_id is not None
    assert created.request_id == call.request_id
    assert {"type": "Analysis", "id": analysis_id, "role": "report"} in call.entities
