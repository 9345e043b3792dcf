"""Reading FHIR JSON as parsed (mappings and lists), without the FHIR models.

The intake maps Observations already validated as R4 (:mod:`.variant_intake_validation`), so
these helpers read plain JSON: codes and texts of a CodeableConcept, a component's value, the
components of an Observation by LOINC code, and every resource in a Bundle, a resource or a
list.
They never raise on odd shapes: what is not there is empty or ``None``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Json = Mapping[str, Any]


def codings(concept: Any) -> list[Json]:
    if not isinstance(concept, Mapping):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]


def codes(concept: Any) -> set[str]:
    return {str(c["code"]).strip() for c in codings(concept) if c.get("code")}


def texts(concept: Any) -> list[str]:
    out = [str(c["display"]).strip() for c in codings(concept) if c.get("display")]
    if isinstance(concept, Mapping) and concept.get("text"):
        out.append(str(concept["text"]).strip())
    return out


def string(component: Json) -> str | None:
    """A component's value as text: valueString, or the code / display / text of its concept."""
    if component.get("valueString"):
        return str(component["valueString"]).strip()
    concept = component.get("valueCodeableConcept")
    for coding in codings(concept):
        if coding.get("code"):
            return str(coding["code"]).strip()
    found = texts(concept)
    return found[0] if found else None


def quantity(component: Json) -> tuple[float, str] | None:
    quantity = component.get("valueQuantity")
    if not isinstance(quantity, Mapping) or quantity.get("value") is None:
        return None
    unit = str(quantity.get("code") or quantity.get("unit") or "")
    return float(quantity["value"]), unit


class Components:
    """An Observation's components by LOINC code (code-only and system-less forms accepted)."""

    def __init__(self, resource: Json) -> None:
        self.by_code: dict[str, list[Json]] = {}
        for component in resource.get("component") or []:
            if not isinstance(component, Mapping):
                continue
            for code in codes(component.get("code")):
                self.by_code.setdefault(code, []).append(component)

    def first(self, code: str) -> Json | None:
        found = self.by_code.get(code)
        return found[0] if found else None

    def all(self, code: str) -> list[Json]:
        return self.by_code.get(code, [])

    def string(self, code: str) -> str | None:
        component = self.first(code)
        return string(component) if component else None


def resources(data: Any, path: str = "") -> Iterator[tuple[str, Json]]:
    """(fallback location, resource) for every resource in a Bundle / resource / list."""
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        for i, item in enumerate(data):
            yield from resources(item, f"{path}[{i}]")
        return
    if not isinstance(data, Mapping):
        yield path or "input", {}
        return
    if data.get("resourceType") == "Bundle":
        for i, entry in enumerate(data.get("entry") or []):
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if resource is None:
                continue
            full_url = entry.get("fullUrl") if isinstance(entry, Mapping) else None
            yield from resources(resource, str(full_url or f"{path}Bundle.entry[{i}]"))
        return
    yield path or "input", data
    # Contained Observations (some EHRs inline them in a DiagnosticReport) are read as well.
    for i, contained in enumerate(data.get("contained") or []):
        if isinstance(contained, Mapping):
            yield f"{path or 'input'}.contained[{i}]", contained


def location(resource: Json, fallback: str) -> str:
    kind = resource.get("resourceType") or "resource"
    rid = resource.get("id")
    return f"{kind}/{rid}" if rid else f"{fallback} ({kind})"
