"""The rules of what the genomic services share (``genomic_common``), one behaviour per test.

Issue 13 item 2: each test here kills surviving mutants of ``genomic_common.py`` (listed in
``docs/mutation-testing.md``) by stating the rule the code must keep, with expected values taken
from the CDS Hooks 2.0 specification or the cited clinical source, not from the code.
Facts cited: CDS Hooks 2.0 §Card (``summary`` "<140-character"); CPIC DPYD guideline (Amstutz
et al. 2018, PMID 29152729: *2A no function, *2A/*2A poor metabolizer, "avoid"); CPIC thiopurine
guideline (Relling et al. 2019, PMID 30447069: TPMT *3A/*3A poor metabolizer).
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.cdshooks.services import genomic_common as common
from inference.genomics import load_knowledge_base
from inference.genomics.model import (
    Evidence,
    Gene,
    Interpretation,
    PatientContext,
    Variant,
)
from tests.cds_service.cdshooks.conftest import CdsClient
from tests.cds_service.cdshooks.test_card_rules import cards, cds, kinds, variant
from tests.cds_service.cdshooks.test_genomic_services import (
    COLORECTAL,
    LUNG,
    _t790m_observations,
    genotype_observation,
    medication_request,
    order_sign,
    patient_view,
)

__all__ = ["cds"]  # the card rules' client fixture, used here as it is


# ------------------------------------------------------------------ summaries (CDS Hooks 2.0)


def test_a_summary_is_under_140_characters() -> None:
    """CDS Hooks 2.0 §Card: summary is a "<140-character summary message". 139 characters stay
    as written; 140 are too many and are cut at a word, marked with an ellipsis."""
    words = " ".join(f"word{i:05d}" for i in range(14))  # 14 words of 9 characters: 139
    assert len(words) == 139
    assert common.summary(words) == words
    longer = words + "x"  # 140 characters: the last word is now word00013x
    assert len(longer) == 140
    cut = common.summary(longer)
    assert len(cut) < 140
    # cut after a whole word (13 words), then the ellipsis
    assert cut == " ".join(f"word{i:05d}" for i in range(13)) + " …"


# ------------------------------------------------------------------ unreadable genomic data


def _unreadable(oid: str) -> dict[str, Any]:
    """A variant Observation without a single component: no gene, no change, no position."""
    return {**variant("EGFR", "p.Thr790Met", oid=oid), "component": []}


#: The intake's reason for such an Observation (integrations/fhir/variant_intake.py).
_WHY = "variant has neither gene with HGVS nor a genomic position"


def _unreadable_card(cds: CdsClient, count: int) -> dict[str, Any]:
    observations = [_unreadable(f"u{i}") for i in range(1, count + 1)]
    found = cards(cds, "oncology-genomics", patient_view(observations=observations, conditions=[]))
    (card,) = found
    return card


def test_unreadable_results_are_counted_and_listed_up_to_ten(cds: CdsClient) -> None:
    """Twelve Observations none of which can be read: one warning that counts all twelve, lists
    ten by their Observation id and says how many more there are; an integration problem,
    never presented as a clinical finding."""
    card = _unreadable_card(cds, 12)
    assert card["summary"] == "12 genomic result(s) could not be read"
    assert card["indicator"] == "warning"
    assert card["source"]["label"] == "OncoCDS precision oncology"
    assert card["source"]["topic"]["system"] == "urn:oncocds:card-kind"
    assert card["source"]["topic"]["code"] == "unreadable-genomic-data"
    assert card["source"]["topic"]["display"].startswith("Unreadable genomic data (KB ")
    detail = card["detail"]
    intro, listed = detail.split("\n\n")
    assert intro == (
        "The genomic Observations below do not follow the Genomics Reporting Variant shape this "
        "service reads, so they were not interpreted (integration issue, not a clinical finding):"
    )
    assert listed.split("\n") == [
        *(f"- Observation/u{i}: {_WHY}" for i in range(1, 11)),
        "- and 2 more",
    ]


def test_ten_unreadable_results_are_all_listed_eleven_leave_one_more(cds: CdsClient) -> None:
    ten = _unreadable_card(cds, 10)
    assert ten["summary"] == "10 genomic result(s) could not be read"
    assert ten["detail"].endswith(f"\n- Observation/u10: {_WHY}")  # all ten, nothing more
    eleven = _unreadable_card(cds, 11)
    assert eleven["detail"].endswith("\n- and 1 more")
    assert "Observation/u11" not in eleven["detail"]


def test_one_readable_result_means_no_unreadable_card(cds: CdsClient) -> None:
    """The card is for a patient none of whose genomic Observations could be read. With one
    readable variant (TP53 R175C: no actionable finding) or one readable DPYD genotype (*1/*1,
    normal metabolizer: nothing to act on, CPIC) beside an unreadable one there is nothing to
    show."""
    tp53 = variant("TP53", "p.Arg175Cys", oid="v1")
    with_variant = patient_view(observations=[tp53, _unreadable("u1")], conditions=[COLORECTAL])
    assert cards(cds, "oncology-genomics", with_variant) == []
    with_genotype = patient_view(
        observations=[_unreadable("u1")],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", "*1/*1")],
    )
    assert cards(cds, "oncology-genomics", with_genotype) == []


# ------------------------------------------------------------------ genes with a result on file


def test_a_genotype_naming_its_gene_in_the_value_is_a_result_of_that_gene(cds: CdsClient) -> None:
    """A DPYD genotype sent as "DPYD *1/*1" without a gene component (48018-6) is still a DPYD
    result on file: a normal metabolizer ordering capecitabine gets no card (CPIC: label dose),
    in particular no "No DPYD result on file"."""
    genotype = genotype_observation("DPYD", "DPYD *1/*1")
    del genotype["component"]
    body = order_sign(
        [medication_request("mr1", "capecitabine")],
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype],
    )
    assert cards(cds, "targeted-therapy-check", body) == []


def test_a_variant_given_by_position_is_a_result_of_its_gene(cds: CdsClient) -> None:
    """EGFR T790M sent by its GRCh38 position only (chr7:55181378 C>T, no gene component) is an
    EGFR result on file. RYBREVANT (amivantamab) is indicated in NSCLC by EGFR status (exon 20
    insertions), so an order with no EGFR result gets a missing-test card; with this one it
    must not."""
    body = order_sign(
        [medication_request("mr1", "amivantamab")],
        observations=_t790m_observations(),
        conditions=[LUNG],
    )
    assert "missing-biomarker-test" not in kinds(cards(cds, "targeted-therapy-check", body))
    # without the variant the same order asks for the EGFR test (the rule this relies on)
    untested = order_sign(
        [medication_request("mr1", "amivantamab")], observations=[], conditions=[LUNG]
    )
    (card,) = cards(cds, "targeted-therapy-check", untested)
    assert card["summary"] == "No EGFR result on file; amivantamab depends on it"


# ------------------------------------------------------------------ labels and citations


def _interpretation(*alterations: Variant) -> Interpretation:
    return Interpretation(alterations=alterations, genotypes=(), context=PatientContext())


def test_each_interpretation_names_its_own_alterations() -> None:
    """Findings are labelled from their own interpretation's alterations, whatever was asked
    before in the same thread (the per-thread index of the last interpretation)."""
    braf = Variant(gene=Gene("BRAF"), protein_change="V600E")
    egfr = Variant(gene=Gene("EGFR"), protein_change="T790M")
    first, second = _interpretation(braf), _interpretation(egfr)
    assert common.label_of(first, braf.id) == "BRAF V600E"
    assert common.label_of(first, braf.id) == "BRAF V600E"  # asked again: same answer
    assert common.label_of(second, egfr.id) == "EGFR T790M"
    assert common.alterations_by_id(second) == {egfr.id: egfr}
    assert common.label_of(first, braf.id) == "BRAF V600E"
    assert common.alterations_by_id(first) == {braf.id: braf}


def test_a_citation_links_its_source_and_at_most_three_pubmed_articles() -> None:
    """A card cites an evidence item by its label and level, linked to the source record, and
    at most three of its PubMed articles (the rest are on the source record). The item and
    PubMed ids are made up: only the layout is checked."""
    evidence = Evidence(
        "CIViC",
        "EID1863",
        "https://civicdb.org/evidence/1863",
        pmids=("11111", "22222", "33333", "44444"),
        level="B",
    )
    assert common.evidence_link(evidence) == (
        "[CIViC EID1863 (level B)](https://civicdb.org/evidence/1863), "
        "[PMID 11111](https://pubmed.ncbi.nlm.nih.gov/11111/), "
        "[PMID 22222](https://pubmed.ncbi.nlm.nih.gov/22222/), "
        "[PMID 33333](https://pubmed.ncbi.nlm.nih.gov/33333/)"
    )
    unlevelled = Evidence("FDA", "FDA-TAGRISSO", "https://www.accessdata.fda.gov/x.pdf")
    assert (
        common.evidence_link(unlevelled) == "[FDA-TAGRISSO](https://www.accessdata.fda.gov/x.pdf)"
    )


def test_a_card_source_names_its_kind_and_the_knowledge_base_release() -> None:
    """source.topic: the card kind (feedback is summarised per kind) and, in its display, the
    knowledge-base release the card came from, shortened to at most 40 characters."""
    source = common.source("resistance", "Resistance to the ordered drug")
    assert source.label == "OncoCDS precision oncology"
    assert source.topic is not None
    assert (source.topic.system, source.topic.code) == ("urn:oncocds:card-kind", "resistance")
    display = source.topic.display or ""
    assert display.startswith("Resistance to the ordered drug (KB ")
    assert display.endswith(")")
    release = display.removeprefix("Resistance to the ordered drug (KB ").removesuffix(")")
    version = load_knowledge_base().version
    assert len(version) > 40  # the built KB's version is longer: the display shortens it
    assert version.startswith(release)
    assert len(release) == 40


# ------------------------------------------------------------------ the patient in context


@pytest.mark.parametrize(
    ("service", "body"),
    [
        ("oncology-genomics", patient_view(observations=[], conditions=[COLORECTAL])),
        (
            "targeted-therapy-check",
            order_sign([medication_request("mr1", "osimertinib")], observations=[], conditions=[]),
        ),
    ],
)
def test_a_hook_call_without_a_patient_is_refused(
    cds: CdsClient, service: str, body: dict[str, Any]
) -> None:
    """CDS Hooks patient-view 1.0 and order-sign 1.0: context.patientId is REQUIRED (1..1). The
    genomic services never see a call without one, so their cards always have a patient to
    address a suggested order or referral to (docs/mutation-testing.md, the justified
    ``patient_ref`` mutants)."""
    del body["context"]["patientId"]
    response = cds.call(service, body)
    assert response.status_code == 400, response.text
    assert "context.patientId" in response.json()["issue"][0]["diagnostics"]


# ------------------------------------------------------------------ results reused per input


def test_a_drug_only_ordered_is_not_a_current_medication_at_the_next_chart_open(
    cds: CdsClient,
) -> None:
    """DPYD *1/*2A (intermediate metabolizer, CPIC). An order for capecitabine is checked as
    ordered (critical card); then the chart opens with the same results and no active
    medication: capecitabine is not among the current medications, so the DPYD card is a
    warning, not "Current medication affected". An interpretation is reused only for the same
    inputs, and the drugs being ordered are part of them."""
    genotypes = [genotype_observation("DPYD", "*1/*2A")]
    order = order_sign(
        [medication_request("mr1", "capecitabine")],
        observations=[],
        conditions=[COLORECTAL],
        genotypes=genotypes,
    )
    (ordered,) = cards(cds, "targeted-therapy-check", order)
    assert ordered["indicator"] == "critical"
    view = patient_view(observations=[], conditions=[COLORECTAL], genotypes=genotypes)
    view["prefetch"]["patient"] = order["prefetch"]["patient"]  # the same inputs but the order
    pgx = cards(cds, "oncology-genomics", view)[0]
    assert pgx["source"]["topic"]["code"] == "pharmacogenomic-risk"
    assert pgx["indicator"] == "warning"
    assert not pgx["summary"].startswith("Current medication")
