"""Draft orders suggested by cards: valid FHIR R4, or a clear error."""

from __future__ import annotations

import pytest

from inference.genomics.model import Medication
from integrations.errors import FhirMappingError
from integrations.fhir.orders import (
    MAX_TEXT,
    biomarker_test_order,
    counselling_referral,
    medication_proposal,
)
from integrations.fhir.resources import MedicationRequest, ServiceRequest


def test_medication_proposal_is_a_coded_draft_when_the_code_is_known() -> None:
    order = medication_proposal(Medication("encorafenib", rxnorm="2049106"), "Patient/p1")
    MedicationRequest.model_validate(order)
    assert order["status"] == "draft"
    assert order["intent"] == "proposal"
    assert order["subject"] == {"reference": "Patient/p1"}
    assert order["medicationCodeableConcept"]["coding"] == [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "2049106",
            "display": "encorafenib",
        }
    ]
    uncoded = medication_proposal(Medication("sotorasib"), "Patient/p1")
    assert uncoded["medicationCodeableConcept"] == {"text": "sotorasib"}  # no guessed code


def test_service_proposals_are_valid_drafts_by_text() -> None:
    test = biomarker_test_order("EGFR", "Required before osimertinib: FDA label", "Patient/p1")
    ServiceRequest.model_validate(test)
    assert test["code"] == {"text": "EGFR testing"}
    assert "coding" not in test["code"]
    referral = counselling_referral("BRCA2", "HBOC", "Germline BRCA2 c.5946delT", "Patient/p1")
    ServiceRequest.model_validate(referral)
    assert referral["code"]["text"] == "Genetic counselling referral (BRCA2: HBOC)"
    long = biomarker_test_order("EGFR", "x" * 5000, "Patient/p1")
    assert len(long["reasonCode"][0]["text"]) == MAX_TEXT


@pytest.mark.parametrize("subject", ["p1", "Group/g1", "Patient/", ""])
def test_orders_refuse_a_subject_that_is_not_a_patient(subject: str) -> None:
    with pytest.raises(FhirMappingError, match="Patient reference"):
        medication_proposal(Medication("encorafenib"), subject)


def test_orders_refuse_empty_text_and_invalid_resources() -> None:
    with pytest.raises(FhirMappingError, match="empty"):
        medication_proposal(Medication("  "), "Patient/p1")
    with pytest.raises(FhirMappingError, match="not valid FHIR R4"):
        # RxNorm code with a space: FHIR code datatypes forbid leading/trailing whitespace.
        medication_proposal(Medication("x", rxnorm=" 123 "), "Patient/p1")
