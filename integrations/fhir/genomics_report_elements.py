"""FHIR data-type elements of the genomic report: codings, CodeableConcepts, components,
citations, and the content-derived resource ids and ``urn:uuid`` fullUrls.

Ids are derived from content (SHA-256 over the patient reference and the canonical JSON of what
each resource says), so the same input gives the same ids and fullUrls on every run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from inference.genomics.model import Evidence, Gene, Medication
from inference.genomics.serialize import to_jsonable
from integrations.fhir import genomics_codes as gc

#: Namespace of the deterministic urn:uuid fullUrls (uuid5 over the resource id).
_URN_NAMESPACE: Final = uuid.UUID("6f1d3c1e-5c1a-4b8e-9a37-0c0da0d1e4a1")

Json = dict[str, Any]


def instant(value: datetime) -> str:
    """FHIR instant in UTC with ``Z``, exactly as fhir.resources serialises it."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


#: Alteration fields added after report ids were first issued: left out of an id's digest while
#: unset, so a report for the same results keeps its resource ids (conditional create on the
#: EHR's server matches them) across the upgrade.
_NEWER_UNSET_FIELDS: Final = ("variant_class", "exon", "classification", "score")
#: Therapeutic-finding fields added later (issue 12), left out while at their default.
_NEWER_DEFAULTS: Final[dict[str, Any]] = {
    "tumour_code": None,
    "label_id": None,
    "regulatory_status": "unknown",
    "preclinical": False,
    "conflicts": [],
}


def _id_payload(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _id_payload(v)
            for k, v in value.items()
            if not (v is None and k in _NEWER_UNSET_FIELDS)
            and not (k in _NEWER_DEFAULTS and v == _NEWER_DEFAULTS[k])
            and not (k == "source" and v == "" and "drugs" in value)
        }
    if isinstance(value, list):
        return [_id_payload(v) for v in value]
    return value


def digest(*parts: object) -> str:
    payload = json.dumps([_id_payload(to_jsonable(p)) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def resource_id(prefix: str, *parts: object) -> str:
    return f"{prefix}-{digest(*parts)[:24]}"


@functools.lru_cache(maxsize=65_536)
def full_url(resource_id: str) -> str:
    """The deterministic ``urn:uuid:`` fullUrl of a resource id."""
    return f"urn:uuid:{uuid.uuid5(_URN_NAMESPACE, resource_id)}"


def coding(system: str, code: str, display: str | None = None) -> Json:
    out: Json = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def cc(system: str, code: str, display: str | None = None) -> Json:
    return {"coding": [coding(system, code, display)]}


def loinc_cc(code: str, display: str | None = None) -> Json:
    return cc(gc.LOINC, code, display)


def component(code: Json, **value: Any) -> Json:
    return {"code": code, **value}


def loinc_component(code: str, **value: Any) -> Json:
    return component(loinc_cc(code), **value)


def categories() -> list[Json]:
    # genomic-base: category 2..*, slices labCategory and geCategory (IG STU3 §genomic-base).
    return [cc(gc.OBS_CATEGORY, "laboratory"), cc(gc.V2_0074, "GE")]


def gene_cc(gene: Gene) -> Json:
    if gene.hgnc_id:
        return cc(gc.HGNC, gene.hgnc_id, gene.symbol)
    return {"text": gene.symbol}


def medication_cc(drug: Medication) -> Json:
    if drug.rxnorm:
        return cc(gc.RXNORM, drug.rxnorm, drug.name)
    return {"text": drug.name}


def conclusion_component(text: str) -> Json:
    return component(cc(gc.TBD, gc.CODE_CONCLUSION_STRING), valueString=text)


def related_artifacts(evidence: Iterable[Evidence]) -> list[Json]:
    """``workflow-relatedArtifact`` citations: the source record and each PubMed id."""
    out: list[Json] = []
    seen: set[str] = set()
    for ev in evidence:
        label = f"{ev.source} {ev.id}"
        if label not in seen:
            seen.add(label)
            artifact: Json = {"type": "citation", "label": label, "url": ev.url}
            if ev.level:
                artifact["display"] = f"{ev.source} evidence level {ev.level}"
            if ev.version:
                artifact["citation"] = f"{label} ({ev.version})"
            out.append({"url": gc.RELATED_ARTIFACT_EXT, "valueRelatedArtifact": artifact})
        for pmid in ev.pmids:
            key = f"PMID:{pmid}"
            if key in seen:
                continue
            seen.add(key)
            out.append(
                {
                    "url": gc.RELATED_ARTIFACT_EXT,
                    "valueRelatedArtifact": {
                        "type": "citation",
                        "label": key,
                        "url": f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
                    },
                }
            )
    return out
