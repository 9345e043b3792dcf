"""R4 validation of Observations before they are mapped, remembered in caches the caller owns.

fhir.resources validation costs ~0.9 ms per Variant Observation, and EHRs send the same
Observations on every chart open: :func:`validation_problem` validates each distinct content once
(keyed by its whole canonical JSON) and a new one in parts (:func:`valid_in_parts`), reusing what
it shares with those seen before. The caches are a :class:`ValidationCaches` passed in, so a
test or a second intake can hold its own. Reasons name locations and messages only, never the
offending value (FHIR input may hold PHI).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pydantic

from integrations.fhir.resources import Observation, ObservationComponent
from integrations.memo import LruCache, canonical_json

Json = Mapping[str, Any]


def validation_reason(exc: pydantic.ValidationError) -> str:
    # Location and message only: FHIR input may hold PHI, so the offending value is not echoed.
    parts = []
    for error in exc.errors()[:3]:
        loc = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{loc}: {error.get('msg', 'invalid')}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "invalid Observation: " + "; ".join(parts) + more


#: Top-level Observation elements that differ from one patient, order or result to the next
#: (with their ``_element`` primitive extensions). The other elements (status, category, code,
#: value, method, interpretation, …) and each component repeat across a lab's results.
_PER_RESULT: Final = frozenset(
    {
        "id",
        "meta",
        "implicitRules",
        "language",
        "text",
        "contained",
        "extension",
        "modifierExtension",
        "identifier",
        "basedOn",
        "partOf",
        "subject",
        "focus",
        "encounter",
        "effectiveDateTime",
        "effectivePeriod",
        "effectiveTiming",
        "effectiveInstant",
        "issued",
        "performer",
        "note",
        "specimen",
        "device",
        "hasMember",
        "derivedFrom",
    }
)


@dataclass(frozen=True, slots=True)
class ValidationCaches:
    """What validation remembers, passed in by the caller (one set per process in the intake).

    Attributes:
        problems: canonical JSON of a whole Observation → why it is invalid (``""`` if valid).
        shells: canonical JSON of the repeating part of an Observation → valid?
        components: canonical JSON of one component → valid?
    """

    problems: LruCache[bytes, str]
    shells: LruCache[bytes, bool]
    components: LruCache[bytes, bool]

    @classmethod
    def sized(
        cls, *, problems: int = 16_384, shells: int = 4_096, components: int = 16_384
    ) -> ValidationCaches:
        return cls(LruCache(problems), LruCache(shells), LruCache(components))

    def clear(self) -> None:
        for cache in (self.problems, self.shells, self.components):
            cache.clear()


def _remembered_validity(cache: LruCache[bytes, bool], model: Any, data: Json) -> bool:
    key = canonical_json(data)
    known = cache.get(key)
    if known is None:
        try:
            model.model_validate(data)
        except pydantic.ValidationError:
            known = False
        else:
            known = True
        cache.put(key, known)
    return known


def valid_in_parts(resource: Json, caches: ValidationCaches) -> bool:
    """Whether an Observation is valid R4, judged in three independent parts.

    fhir.resources validation costs ~0.9 ms per Variant Observation, nearly all of it in parts
    that repeat across patients: each component and the repeating top-level elements are
    validated once per distinct content; the per-result elements (:data:`_PER_RESULT`, with
    status and code, which an Observation requires) every time. The parts share no rule: FHIR's
    choice elements fall wholly in one part (``value[x]`` repeats, ``effective[x]`` is per
    result) and required elements are in both. ``False`` means "not shown valid": the caller
    validates the whole resource then.
    """
    components = resource.get("component", [])
    if "component" in resource and not (isinstance(components, list) and components):
        return False  # null, empty or not a list: whole-resource validation judges it
    if not all(
        isinstance(c, dict) and _remembered_validity(caches.components, ObservationComponent, c)
        for c in components
    ):
        return False
    shared: dict[str, Any] = {}
    own: dict[str, Any] = {
        "resourceType": "Observation",
        "status": resource.get("status"),
        "code": resource.get("code"),
    }
    for key, value in resource.items():
        if key.lstrip("_") in _PER_RESULT:
            own[key] = value
        elif key != "component":
            shared[key] = value
    if not _remembered_validity(caches.shells, Observation, shared):
        return False
    try:
        Observation.model_validate(own)
    except pydantic.ValidationError:
        return False
    return True


def validate_observation(resource: Json, caches: ValidationCaches) -> None:
    """Validate an Observation as R4 with ``fhir.resources``; raise ``pydantic.ValidationError``.

    Cheaply in parts when it is valid (:func:`valid_in_parts`); otherwise whole, so the problem
    reported is the one whole-resource validation gives (same locations, same order).
    """
    if not valid_in_parts(resource, caches):
        Observation.model_validate(resource)


def validation_problem(resource: Json, caches: ValidationCaches) -> str | None:
    """Why an Observation is not valid R4 (``None`` when it is), validated once per content.

    EHRs send the same Observations on every chart open, so each distinct content is validated
    once per process (the cache key is the whole canonical JSON, so any change is validated
    again); a new one reuses what its parts share with those seen before
    (:func:`validate_observation`).
    """
    key = canonical_json(resource)
    problem = caches.problems.get(key)
    if problem is None:
        try:
            validate_observation(resource, caches)
        except pydantic.ValidationError as exc:
            problem = validation_reason(exc)
        else:
            problem = ""
        caches.problems.put(key, problem)
    return problem or None
