"""A small checker for the Genomics Reporting STU3 slices OncoCDS emits.

No FHIR package server is reachable here, so the IG's StructureDefinitions cannot be loaded; this
checks the rules of IG §genomic-base, §variant, §implication, §therapeutic-implication,
§diagnostic-implication, §genotype, §molecular-biomarker and §genomic-report that our output relies
on (fixed codes, required categories, value[x] presence/absence, required bindings we use, and
that every reference inside a Bundle resolves). It is table-driven and returns every problem
found, so tests can show both a pass on the IG example shapes and a failure on a broken copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from integrations.fhir import genomics_codes as gc

Json = dict[str, Any]

_VALUE_KEYS: Final = (
    "valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger",
    "valueRange", "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod",
)  # fmt: skip

#: component code → the value[x] type the IG allows for it (variant and implication slices used).
_COMPONENT_VALUE: Final = {
    (gc.LOINC, gc.C_GENE): "valueCodeableConcept",
    (gc.LOINC, gc.C_CODING_HGVS): "valueCodeableConcept",
    (gc.LOINC, gc.C_PROTEIN_HGVS): "valueCodeableConcept",
    (gc.LOINC, gc.C_GENOMIC_HGVS): "valueCodeableConcept",
    (gc.LOINC, gc.C_TRANSCRIPT): "valueCodeableConcept",
    (gc.LOINC, gc.C_ASSEMBLY): "valueCodeableConcept",
    (gc.LOINC, gc.C_CHROMOSOME): "valueCodeableConcept",
    (gc.LOINC, gc.C_COORD_SYSTEM): "valueCodeableConcept",
    (gc.LOINC, gc.C_EXACT_START_END): "valueRange",
    (gc.LOINC, gc.C_REF_ALLELE): "valueString",
    (gc.LOINC, gc.C_ALT_ALLELE): "valueString",
    (gc.LOINC, gc.C_SOURCE_CLASS): "valueCodeableConcept",
    (gc.LOINC, gc.C_AF): "valueQuantity",
    (gc.LOINC, gc.C_DEPTH): "valueQuantity",
    (gc.LOINC, gc.C_ALLELIC_STATE): "valueCodeableConcept",
    (gc.LOINC, gc.C_COPY_NUMBER): "valueQuantity",
    (gc.LOINC, gc.C_MEDICATION): "valueCodeableConcept",
    (gc.LOINC, gc.C_EVIDENCE_LEVEL): "valueCodeableConcept",
    (gc.LOINC, gc.C_PHENOTYPE): "valueCodeableConcept",
    (gc.LOINC, gc.C_CLIN_SIG): "valueCodeableConcept",
    (gc.TBD, gc.CODE_THERAPEUTIC): "valueCodeableConcept",
    (gc.TBD, gc.CODE_CONCLUSION_STRING): "valueString",
}
_HGVS_COMPONENTS: Final = frozenset({gc.C_CODING_HGVS, gc.C_PROTEIN_HGVS, gc.C_GENOMIC_HGVS})
_DERIVED_TARGET_PROFILES: Final = frozenset(
    {gc.PROFILE_VARIANT, gc.PROFILE_GENOTYPE, gc.PROFILE_BIOMARKER}
)


def _codings(cc: Any) -> list[tuple[str, str]]:
    if not isinstance(cc, dict):
        return []
    return [(c.get("system", ""), c.get("code", "")) for c in cc.get("coding", []) or []]


def _has(cc: Any, system: str, code: str) -> bool:
    return (system, code) in _codings(cc)


def _profiles(resource: Json) -> list[str]:
    return list((resource.get("meta") or {}).get("profile") or [])


def _value_keys(element: Json) -> list[str]:
    return [k for k in element if k.startswith("value")]


def _components(resource: Json) -> list[Json]:
    return list(resource.get("component") or [])


def _component_codes(resource: Json) -> list[tuple[str, str]]:
    codes: list[tuple[str, str]] = []
    for comp in _components(resource):
        codes.extend(_codings(comp.get("code")))
    return codes


def _check_genomic_base(where: str, obs: Json) -> list[str]:
    problems: list[str] = []
    categories = obs.get("category") or []
    if not any(_has(c, gc.OBS_CATEGORY, "laboratory") for c in categories):
        problems.append(f"{where}: category laboratory missing (genomic-base labCategory 1..1)")
    if not any(_has(c, gc.V2_0074, "GE") for c in categories):
        problems.append(f"{where}: category v2-0074#GE missing (genomic-base geCategory 1..1)")
    if not obs.get("status"):
        problems.append(f"{where}: status missing")
    if not (obs.get("subject") or {}).get("reference"):
        problems.append(f"{where}: subject reference missing")
    for i, comp in enumerate(_components(obs)):
        values = _value_keys(comp)
        for code in _codings(comp.get("code")):
            expected = _COMPONENT_VALUE.get(code)
            if expected is not None and values != [expected]:
                problems.append(
                    f"{where}.component[{i}] {code[1]}: expected {expected}, found {values}"
                )
            if code[0] == gc.LOINC and code[1] in _HGVS_COMPONENTS:
                systems = {s for s, _ in _codings(comp.get("valueCodeableConcept"))}
                if systems != {gc.HGVS}:
                    problems.append(
                        f"{where}.component[{i}] {code[1]}: HGVS system must be {gc.HGVS}"
                    )
    return problems


def _check_variant(where: str, obs: Json) -> list[str]:
    problems: list[str] = []
    if not _has(obs.get("code"), gc.LOINC, gc.CODE_VARIANT):
        problems.append(f"{where}: variant code must be LOINC {gc.CODE_VARIANT}")
    values = {code for _, code in _codings(obs.get("valueCodeableConcept"))}
    if not values & gc.VARIANT_VALUES:
        problems.append(
            f"{where}: valueCodeableConcept must be from LL1971-2 (e.g. LA9633-4 Present)"
        )
    codes = {code for _, code in _component_codes(obs)}
    if gc.C_EXACT_START_END in codes and gc.C_COORD_SYSTEM not in codes:
        problems.append(f"{where}: exact-start-end without coordinate-system (92822-6)")
    for comp in _components(obs):
        if _has(comp.get("code"), gc.LOINC, gc.C_CHROMOSOME):
            chrom = {c for _, c in _codings(comp.get("valueCodeableConcept"))}
            if not chrom & set(gc.CHROMOSOME.values()):
                problems.append(f"{where}: chromosome-identifier not from LL2938-0 (required)")
        if _has(comp.get("code"), gc.LOINC, gc.C_AF):
            quantity = comp.get("valueQuantity") or {}
            if quantity.get("system") != gc.UCUM or quantity.get("code") != "1":
                problems.append(f"{where}: sample-allelic-frequency must be UCUM '1'")
    return problems


def _check_implication(where: str, obs: Json, kind: str) -> list[str]:
    problems: list[str] = []
    if not _has(obs.get("code"), gc.TBD, kind):
        problems.append(f"{where}: code must be tbd-codes-cs#{kind}")
    if _value_keys(obs):
        problems.append(f"{where}: implications must not have value[x] (implication value[x] 0..0)")
    if not obs.get("derivedFrom"):
        problems.append(f"{where}: implications need derivedFrom (1..*)")
    if kind == gc.CODE_THERAPEUTIC:
        codes = _component_codes(obs)
        if (gc.TBD, gc.CODE_THERAPEUTIC) not in codes:
            problems.append(f"{where}: therapeutic-implication component missing")
        if (gc.LOINC, gc.C_MEDICATION) not in codes:
            problems.append(f"{where}: medication-assessed (51963-7) missing")
    return problems


def check_resource(resource: Json, where: str = "resource") -> list[str]:
    """Problems of one resource against the IG profiles it claims (``meta.profile``)."""
    problems: list[str] = []
    profiles = _profiles(resource)
    rtype = resource.get("resourceType")
    if rtype == "Observation" and any(
        p.startswith(gc.PROFILE_VARIANT.rsplit("/", 1)[0]) for p in profiles
    ):
        problems.extend(_check_genomic_base(where, resource))
    if gc.PROFILE_VARIANT in profiles:
        problems.extend(_check_variant(where, resource))
    if gc.PROFILE_THERAPEUTIC in profiles:
        problems.extend(_check_implication(where, resource, gc.CODE_THERAPEUTIC))
    if gc.PROFILE_DIAGNOSTIC in profiles:
        problems.extend(_check_implication(where, resource, gc.CODE_DIAGNOSTIC))
    if gc.PROFILE_GENOTYPE in profiles:
        if not _has(resource.get("code"), gc.LOINC, gc.CODE_GENOTYPE):
            problems.append(f"{where}: genotype code must be LOINC {gc.CODE_GENOTYPE}")
        if "valueCodeableConcept" not in resource:
            problems.append(f"{where}: genotype needs valueCodeableConcept")
    if gc.PROFILE_REPORT in profiles:
        if rtype != "DiagnosticReport":
            problems.append(f"{where}: genomic-report must be a DiagnosticReport")
        if not _has(resource.get("code"), gc.LOINC, gc.CODE_REPORT):
            problems.append(f"{where}: genomic-report code must be LOINC {gc.CODE_REPORT}")
        if not any(_has(c, gc.V2_0074, "GE") for c in resource.get("category") or []):
            problems.append(f"{where}: genomic-report category v2-0074#GE missing")
        if not resource.get("status"):
            problems.append(f"{where}: status missing")
    return problems


def _references(resource: Json, key: str) -> Iterable[str]:
    for ref in resource.get(key) or []:
        if isinstance(ref, dict) and ref.get("reference"):
            yield str(ref["reference"])


def check_bundle(bundle: Json) -> list[str]:
    """Problems of every resource in a Bundle, plus its internal links.

    Checks that report ``result`` and implication ``derivedFrom`` references resolve to entries
    of the bundle (by fullUrl), and that ``derivedFrom`` points at a Variant, Genotype or
    Molecular Biomarker.
    """
    problems: list[str] = []
    by_url: dict[str, Json] = {}
    for i, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") or {}
        if entry.get("fullUrl"):
            by_url[entry["fullUrl"]] = resource
        problems.extend(check_resource(resource, f"entry[{i}] {resource.get('resourceType')}"))
    reports = 0
    for i, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") or {}
        where = f"entry[{i}]"
        if gc.PROFILE_REPORT in _profiles(resource):
            reports += 1
            for ref in _references(resource, "result"):
                if ref not in by_url:
                    problems.append(f"{where}: result {ref} does not resolve in the bundle")
        for ref in _references(resource, "derivedFrom"):
            target = by_url.get(ref)
            if target is None:
                problems.append(f"{where}: derivedFrom {ref} does not resolve in the bundle")
            elif not set(_profiles(target)) & _DERIVED_TARGET_PROFILES:
                problems.append(f"{where}: derivedFrom {ref} is not a variant/genotype/biomarker")
    if reports != 1:
        problems.append(f"bundle: expected exactly one genomic-report, found {reports}")
    return problems
