"""Draft orders a card suggests: MedicationRequest and ServiceRequest resources (FHIR R4).

Every resource is built here and validated against the R4 model (``fhir.resources.R4B``)
before a card carries it, so a suggestion never hands the EHR a resource it must reject.
CDS Hooks 2.0 §Action: a ``create`` action's resource is a complete FHIR resource; drafts are
``status = draft``, ``intent = proposal`` (FHIR R4 MedicationRequest/ServiceRequest: a
suggestion the clinician decides on).
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from inference.genomics.model import Medication
from integrations.errors import FhirMappingError
from integrations.fhir.resources import MedicationRequest, ServiceRequest

RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
#: FHIR R4 ``string`` has no set limit; these keep card payloads small and readable.
MAX_TEXT: Final = 500

Json = dict[str, Any]


def _text(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise FhirMappingError("order text is empty")
    return value[:MAX_TEXT]


def _subject(patient_ref: str) -> Json:
    if not patient_ref.startswith("Patient/") or len(patient_ref) <= len("Patient/"):
        raise FhirMappingError("an order's subject must be a Patient reference")
    return {"reference": patient_ref}


def _validated(model: type[MedicationRequest] | type[ServiceRequest], resource: Json) -> Json:
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        # The message names fields only (the resource holds no PHI but a patient reference).
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise FhirMappingError(
            f"{resource['resourceType']} is not valid FHIR R4: {', '.join(fields)}"
        ) from exc
    return resource


def medication_proposal(drug: Medication, patient_ref: str) -> Json:
    """A draft MedicationRequest proposing ``drug`` (RxNorm-coded only when the code is known).

    Raises:
        FhirMappingError: an empty drug name, a subject that is not a Patient, or a resource
            that fails R4 validation.
    """
    name = _text(drug.name)
    concept: Json = {"text": name}
    if drug.rxnorm:
        concept["coding"] = [{"system": RXNORM, "code": drug.rxnorm, "display": name}]
    return _validated(
        MedicationRequest,
        {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "proposal",
            "medicationCodeableConcept": concept,
            "subject": _subject(patient_ref),
        },
    )


def service_proposal(what: str, reason: str, patient_ref: str) -> Json:
    """A draft ServiceRequest (a biomarker test, a genetic-counselling referral), by text.

    No code is sent: the test or referral code is the ordering system's to choose (no LOINC or
    SNOMED CT code is guessed here).

    Raises:
        FhirMappingError: empty text, a subject that is not a Patient, or invalid R4.
    """
    return _validated(
        ServiceRequest,
        {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "code": {"text": _text(what)},
            "reasonCode": [{"text": _text(reason)}],
            "subject": _subject(patient_ref),
        },
    )


def biomarker_test_order(test: str, reason: str, patient_ref: str) -> Json:
    """A draft order for a biomarker test (``EGFR testing``)."""
    return service_proposal(f"{test} testing", reason, patient_ref)


def counselling_referral(gene: str, condition: str, reason: str, patient_ref: str) -> Json:
    """A draft genetic-counselling referral for a germline finding."""
    return service_proposal(
        f"Genetic counselling referral ({gene}: {condition})", reason, patient_ref
    )
