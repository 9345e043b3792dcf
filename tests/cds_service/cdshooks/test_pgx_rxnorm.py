"""A pharmacogenomic drug known to the EHR by its RxNorm code alone still meets its gene.

EHRs may send an order's medication as a coding with no text a name match could use. The
knowledge base carries the RxNorm ingredient RXCUIs of the CPIC drugs (``drugs.toml``: RxNorm,
NLM, as CPIC's drug table gives them; capecitabine 194000), so such an order is capecitabine.
Facts: CPIC DPYD guideline (Amstutz et al. 2018, PMID 29152729): *2A is no function; *2A/*2A
is a poor metabolizer (avoid fluoropyrimidines), *1/*2A an intermediate metabolizer (reduce the
starting dose), *1/*1 a normal metabolizer.
"""

from __future__ import annotations

import json
from typing import Any, Final

import pytest

from tests.cds_service.cdshooks.conftest import CdsClient
from tests.cds_service.cdshooks.test_card_rules import cards, cds, kinds
from tests.cds_service.cdshooks.test_genomic_services import (
    COLORECTAL,
    genotype_observation,
    order_sign,
    patient_view,
)

__all__ = ["cds"]  # the card rules' client fixture, used here as it is

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
#: Capecitabine's RxNorm ingredient RXCUI (RxNorm, NLM; CPIC drug table "RxNorm:194000").
CAPECITABINE = "194000"
#: An RXCUI the knowledge base does not hold (the control: a code alone names no drug).
UNKNOWN_RXCUI = "999999999"
SERVICE = {"order-sign": "targeted-therapy-check", "order-select": "targeted-therapy-check-select"}


def coded_medication(rxcui: str, rid: str = "mr1", status: str = "draft") -> dict[str, Any]:
    """A MedicationRequest whose medication is one RxNorm coding: no display, no text."""
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxcui}]},
        "subject": {"reference": "Patient/p1"},
    }


def coded_order(hook: str, diplotype: str, rxcui: str = CAPECITABINE) -> dict[str, Any]:
    body = order_sign(
        [coded_medication(rxcui)],
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", diplotype)],
        hook=hook,
    )
    assert "capecitabine" not in json.dumps(body).lower()  # nothing but the code names the drug
    return body


REMOVE_THE_ORDER: Final = [
    {
        "type": "delete",
        "description": "Remove the draft capecitabine order",
        "resourceId": "MedicationRequest/mr1",
    }
]


@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
@pytest.mark.parametrize(
    ("diplotype", "phenotype", "actions"),
    [
        ("*2A/*2A", "poor metabolizer", REMOVE_THE_ORDER),  # CPIC: avoid
        ("*1/*2A", "intermediate metabolizer", None),  # CPIC: reduce the dose, no removal
    ],
)
def test_capecitabine_ordered_by_rxnorm_code_only_gets_the_dpyd_card(
    cds: CdsClient, hook: str, diplotype: str, phenotype: str, actions: list[Any] | None
) -> None:
    (card,) = cards(cds, SERVICE[hook], coded_order(hook, diplotype))
    assert kinds([card]) == ["pharmacogenomic-risk"]
    assert card["indicator"] == "critical"
    assert phenotype in card["summary"]
    assert [s["actions"] for s in card.get("suggestions", [])] == ([actions] if actions else [])


def test_normal_metabolizer_ordering_capecitabine_by_rxnorm_only_gets_no_card(
    cds: CdsClient,
) -> None:
    assert cards(cds, SERVICE["order-sign"], coded_order("order-sign", "*1/*1")) == []


def test_an_rxnorm_code_the_knowledge_base_lacks_is_no_pharmacogenomic_drug(
    cds: CdsClient,
) -> None:
    found = cards(cds, SERVICE["order-sign"], coded_order("order-sign", "*2A/*2A", UNKNOWN_RXCUI))
    assert "pharmacogenomic-risk" not in kinds(found)


def test_a_current_capecitabine_medication_coded_by_rxnorm_only_is_affected(
    cds: CdsClient,
) -> None:
    body = patient_view(
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", "*1/*2A")],
        medications=[coded_medication(CAPECITABINE, rid="m1", status="active")],
    )
    found = cards(cds, "oncology-genomics", body)
    assert kinds(found)[0] == "pharmacogenomic-risk"
    assert found[0]["indicator"] == "critical"
    assert found[0]["summary"].startswith("Current medication affected")
