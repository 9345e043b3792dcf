"""Patient context from FHIR: tumour type from Conditions, medications, sex and age.

Used by ``POST /api/v1/analyses`` (a Bundle with Patient, Condition, Observations) and by the CDS
services (prefetched Conditions and MedicationRequests). Tumour types resolve through the one
table the CLI and HL7 use too (:func:`inference.genomics.resolve_tumour_type`: the whole
OncoTree with SNOMED CT / ICD-10-CM / ICD-O-3 mappings); a Condition whose codes the table does
not know is reported, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from inference.genomics import (
    Medication,
    PatientContext,
    TumourType,
    load_knowledge_base,
)
from inference.genomics.tumour_types import find_tumour_type

RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
_INACTIVE_CLINICAL: Final = frozenset({"inactive", "remission", "resolved"})
_REFUTED: Final = frozenset({"refuted", "entered-in-error"})
_ACTIVE_ORDER: Final = frozenset({"active", "draft", "on-hold"})
#: Nesting guard for Bundles inside Bundles.
_MAX_DEPTH: Final = 4
#: Codings read per Condition (a Condition carries a handful; more is not a diagnosis).
_MAX_CODINGS: Final = 20


def iter_resources(data: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every resource in a Bundle, a list of resources/Bundles, or a single resource."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(data, list):
        for item in data:
            yield from iter_resources(item, depth + 1)
        return
    if not isinstance(data, dict):
        return
    if data.get("resourceType") == "Bundle":
        for entry in data.get("entry") or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield from iter_resources(entry["resource"], depth + 1)
        return
    if isinstance(data.get("resourceType"), str):
        yield data


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def _status_code(concept: Any) -> str | None:
    for coding in _codings(concept):
        code = coding.get("code")
        if isinstance(code, str):
            return code
    return None


def _condition_is_current(condition: dict[str, Any]) -> bool:
    clinical = _status_code(condition.get("clinicalStatus"))
    verification = _status_code(condition.get("verificationStatus"))
    return clinical not in _INACTIVE_CLINICAL and verification not in _REFUTED


@dataclass(slots=True)
class ContextResult:
    context: PatientContext
    patient_id: str | None = None
    #: Condition codes that are not in the curated tumour table (reported, not guessed).
    unmapped_conditions: list[str] = field(default_factory=list)


def tumour_type_from_condition(condition: dict[str, Any]) -> TumourType | None:
    """The tumour type of a Condition: of its codings the knowledge base's tumour table knows,
    the most specific one (an ICD-10-CM C34.90 "lung" beside a SNOMED CT NSCLC code gives
    NSCLC; on a tie, the first); else its text; else None (never a guess)."""
    found: TumourType | None = None
    for coding in _codings(condition.get("code"))[:_MAX_CODINGS]:
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(code, str):
            mapped = find_tumour_type(f"{system}|{code}")
            if mapped is not None and (found is None or len(mapped.lineage) > len(found.lineage)):
                found = mapped
    if found is not None:
        return found
    code_concept = condition.get("code")
    text = code_concept.get("text") if isinstance(code_concept, dict) else None
    if isinstance(text, str) and text.strip():
        return find_tumour_type(text)
    return None


def _canonical_drug(text: str, rxnorm: str | None) -> str:
    """The knowledge base's generic name for an EHR drug text or RxNorm code, else the text.

    EHRs send product names ("Panitumumab 20 MG/ML Injectable Solution"); the KB speaks in
    generic names. A KB name that stands as a whole word in the text, or a KB RxNorm ingredient
    code equal to the order's, maps it; otherwise the text is kept as it is (never a guess).
    """
    drugs = load_knowledge_base().drugs
    lowered = text.strip().lower()
    if rxnorm:
        for name, code in drugs.items():
            if code == rxnorm:
                return name
    if lowered in drugs:
        return lowered
    words = set(re.findall(r"[a-z0-9][a-z0-9-]*", lowered))
    for name in sorted(drugs, key=len, reverse=True):
        if " " not in name and name in words:
            return name
        if " " in name and re.search(rf"\b{re.escape(name)}\b", lowered):
            return name
    return lowered


def medication_from_request(request: dict[str, Any]) -> Medication | None:
    """A MedicationRequest's drug: RxNorm code when coded, and the KB's generic name."""
    concept = request.get("medicationCodeableConcept")
    if not isinstance(concept, dict):
        return None
    rxnorm: str | None = None
    name: str | None = None
    for coding in _codings(concept):
        if coding.get("system") == RXNORM and isinstance(coding.get("code"), str):
            rxnorm = coding["code"]
            if isinstance(coding.get("display"), str):
                name = coding["display"]
            break
    if name is None:
        for coding in _codings(concept):
            if isinstance(coding.get("display"), str):
                name = coding["display"]
                break
    if name is None and isinstance(concept.get("text"), str):
        name = concept["text"]
    if name is None and rxnorm is None:
        return None
    return Medication(name=_canonical_drug(name or rxnorm or "", rxnorm), rxnorm=rxnorm)


def _age(birth_date: Any, today: date) -> int | None:
    if not isinstance(birth_date, str) or len(birth_date) < 4 or not birth_date[:4].isdigit():
        return None
    year = int(birth_date[:4])
    month = int(birth_date[5:7]) if len(birth_date) >= 7 and birth_date[5:7].isdigit() else 1
    day = int(birth_date[8:10]) if len(birth_date) >= 10 and birth_date[8:10].isdigit() else 1
    return today.year - year - ((today.month, today.day) < (month, day))


def patient_context_from_resources(
    resources: Iterable[dict[str, Any]],
    *,
    tumour_type: TumourType | None = None,
    clinical_context: frozenset[str] = frozenset(),
    today: date | None = None,
) -> ContextResult:
    """Build a :class:`PatientContext` from Patient, Condition and MedicationRequest resources.

    Args:
        resources: FHIR resources as dicts (other resource types are ignored).
        tumour_type: an explicit tumour type that wins over the Conditions.
        clinical_context: flags such as ``HR+`` that gate some approvals.
        today: reference date for the age (defaults to today).
    """
    today = today or date.today()  # noqa: DTZ011 - a birthday needs the calendar date only
    patient_id: str | None = None
    sex: str | None = None
    age: int | None = None
    found_tumour: TumourType | None = None
    unmapped: list[str] = []
    medications: list[Medication] = []
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "Patient":
            patient_id = resource.get("id") if isinstance(resource.get("id"), str) else patient_id
            gender = resource.get("gender")
            sex = gender if isinstance(gender, str) else sex
            age = _age(resource.get("birthDate"), today) if age is None else age
        elif kind == "Condition" and _condition_is_current(resource):
            mapped = tumour_type_from_condition(resource)
            if mapped is None:
                codes = [
                    f"{c.get('system')}|{c.get('code')}" for c in _codings(resource.get("code"))
                ]
                unmapped.append(", ".join(codes) or "(uncoded Condition)")
            elif found_tumour is None or len(mapped.lineage) > len(found_tumour.lineage):
                found_tumour = mapped  # the most specific tumour type wins
        elif kind == "MedicationRequest" and resource.get("status") in _ACTIVE_ORDER:
            medication = medication_from_request(resource)
            if medication is not None and medication not in medications:
                medications.append(medication)
    context = PatientContext(
        tumour_type=tumour_type or found_tumour,
        sex=sex,
        age=age,
        medications=tuple(medications),
        clinical_context=clinical_context,
    )
    return ContextResult(context=context, patient_id=patient_id, unmapped_conditions=unmapped)
