"""The synthetic demo patient of ``oncocds demo``, as the FHIR R4 resources an EHR would hold.

No real person: a made-up patient with colorectal adenocarcinoma whose tumour results are rows
of a real, open-access tumour callset, so the cards are about real variants:

- **Variants**: calls of PCGR's example tumour ``T001-COAD.grch38.vcf.gz`` (TCGA-A6-2686,
  TCGA-COAD; https://github.com/sigven/pcgr at 8cca3c0cbd211a975e1d1c452c57cc4fe25edc21,
  ``examples/``; MIT licence; the same file is ``tests/data/vcf/pcgr_T001-COAD.grch38.vcf.gz``,
  and a test checks every row below against it): BRAF V600E (7:140753336 A>T) and the calls
  in the colorectal cancer genes TP53, APC, PTEN and FBXW7, by their Ensembl GRCh38 gene spans.
  Written as Genomics Reporting STU3 Variant Observations (LOINC 69548-6) with the genomic
  coordinates; only BRAF V600E carries a protein change (NM_004333.6:c.1799T>A, p.Val600Glu).
- **DPYD genotype** ``*1/*2A`` (LOINC 84413-4): the tumour-normal callset holds rs3918290
  (DPYD c.1905+1G>A, the ``*2A`` allele) heterozygous at 1:97450058, which is what this
  genotype states. CPIC (PMID 29152729) gives ``*2A`` no function: activity score 1,
  intermediate metabolizer.
- **Active medication** capecitabine (RxNorm ingredient 194000), the fluoropyrimidine that DPYD
  genotype concerns; the demo's ``order-sign`` call drafts cetuximab (RxNorm 318341).
- **Condition** colon cancer, ICD-10-CM C18.9.

:func:`prefetch_for` answers a service's prefetch templates from these resources (FHIR search on
the parameters the templates use), so the demo sends exactly what the service asks for.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import Any, Final

from inference.genomics.model import GenomeBuild
from integrations.chromosomes import ACCESSIONS

PATIENT_ID: Final = "oncocds-demo-crc"
PATIENT_REF: Final = f"Patient/{PATIENT_ID}"
PRACTITIONER: Final = "Practitioner/oncocds-demo-oncologist"
LOINC: Final = "http://loinc.org"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
HGNC: Final = "http://www.genenames.org"

#: (gene, HGNC id, chromosome, GRCh38 position, REF, ALT, tumour VAF, tumour depth, p. change)
#: from T001-COAD.grch38.vcf.gz (INFO TVAF and TDP, rounded to 3 places).
VARIANTS: Final[tuple[tuple[str, str, str, int, str, str, float, int, str | None], ...]] = (
    ("BRAF", "HGNC:1097", "7", 140753336, "A", "T", 0.315, 54, "p.Val600Glu"),
    ("TP53", "HGNC:11998", "17", 7676152, "CG", "C", 0.784, 37, None),
    ("APC", "HGNC:583", "5", 112819037, "A", "G", 0.256, 43, None),
    ("APC", "HGNC:583", "5", 112841617, "C", "T", 0.174, 116, None),
    ("PTEN", "HGNC:9588", "10", 87960959, "A", "G", 0.215, 130, None),
    ("FBXW7", "HGNC:16712", "4", 152323032, "C", "T", 0.398, 94, None),
)
DPYD_DIPLOTYPE: Final = "*1/*2A"


def _cc(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _variant(index: int, row: tuple[str, str, str, int, str, str, float, int, str | None]) -> Any:
    gene, hgnc, chrom, pos, ref, alt, vaf, depth, protein = row
    components: list[dict[str, Any]] = [
        {
            "code": _cc(LOINC, "48018-6", "Gene studied"),
            "valueCodeableConcept": _cc(HGNC, hgnc, gene),
        },
        {"code": _cc(LOINC, "62374-4"), "valueCodeableConcept": _cc(LOINC, "LA26806-2", "GRCh38")},
        {
            "code": _cc(LOINC, "48013-7"),
            "valueCodeableConcept": _cc(
                "http://www.ncbi.nlm.nih.gov/refseq", ACCESSIONS[GenomeBuild.GRCH38][chrom]
            ),
        },
        # 1-based character counting (LOINC LA30102-0), as in the VCF.
        {"code": _cc(LOINC, "92822-6"), "valueCodeableConcept": _cc(LOINC, "LA30102-0")},
        {"code": _cc(LOINC, "81254-5"), "valueRange": {"low": {"value": pos}}},
        {"code": _cc(LOINC, "69547-8"), "valueString": ref},
        {"code": _cc(LOINC, "69551-0"), "valueString": alt},
        {"code": _cc(LOINC, "48002-0"), "valueCodeableConcept": _cc(LOINC, "LA6684-0", "Somatic")},
        {
            "code": _cc(LOINC, "81258-6"),
            "valueQuantity": {"value": vaf, "system": "http://unitsofmeasure.org", "code": "1"},
        },
        {"code": _cc(LOINC, "82121-5"), "valueQuantity": {"value": depth}},
    ]
    if protein:
        components.append(
            {
                "code": _cc(LOINC, "48005-3", "Amino acid change (pHGVS)"),
                "valueCodeableConcept": _cc("http://varnomen.hgvs.org", protein),
            }
        )
    return {
        "resourceType": "Observation",
        "id": f"{PATIENT_ID}-variant-{index}",
        "status": "final",
        "category": [
            _cc("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory"),
            _cc("http://terminology.hl7.org/CodeSystem/v2-0074", "GE"),
        ],
        "code": _cc(LOINC, "69548-6", "Genetic variant assessment"),
        "subject": {"reference": PATIENT_REF},
        "valueCodeableConcept": _cc(LOINC, "LA9633-4", "Present"),
        "component": components,
    }


def _medication(rid: str, status: str, rxnorm: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": rxnorm, "display": name}],
            "text": name,
        },
        "subject": {"reference": PATIENT_REF},
    }


def resources() -> list[dict[str, Any]]:
    """Every resource of the demo patient's chart (a fresh copy each call)."""
    patient = {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "name": [{"family": "Demo", "given": ["Casey"], "text": "Casey Demo (synthetic)"}],
        "gender": "female",
        "birthDate": "1961-03-14",
    }
    condition = {
        "resourceType": "Condition",
        "id": f"{PATIENT_ID}-condition",
        "clinicalStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
        ),
        "verificationStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"
        ),
        "code": {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/sid/icd-10-cm",
                    "code": "C18.9",
                    "display": "Malignant neoplasm of colon, unspecified",
                }
            ],
            "text": "Colon adenocarcinoma",
        },
        "subject": {"reference": PATIENT_REF},
    }
    genotype = {
        "resourceType": "Observation",
        "id": f"{PATIENT_ID}-dpyd",
        "status": "final",
        "category": [
            _cc("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
        ],
        "code": _cc(LOINC, "84413-4", "Genotype display name"),
        "subject": {"reference": PATIENT_REF},
        "valueCodeableConcept": {"text": DPYD_DIPLOTYPE},
        "component": [
            {
                "code": _cc(LOINC, "48018-6", "Gene studied"),
                "valueCodeableConcept": _cc(HGNC, "HGNC:3012", "DPYD"),
            }
        ],
    }
    capecitabine = _medication(f"{PATIENT_ID}-capecitabine", "active", "194000", "capecitabine")
    variants = [_variant(i, row) for i, row in enumerate(VARIANTS, start=1)]
    return [patient, condition, *variants, genotype, capecitabine]


def draft_order() -> dict[str, Any]:
    """The order the demo's ``order-sign`` call is about to sign: cetuximab, as a draft."""
    return _medication(f"{PATIENT_ID}-draft-cetuximab", "draft", "318341", "cetuximab")


# --------------------------------------------------------------------------------- prefetch

#: Search parameters :func:`search` evaluates; a template with any other is left unanswered.
_TOKEN_PATHS: Final = {
    "code": ("code",),
    "category": ("category",),
    "clinical-status": ("clinicalStatus",),
}
_IGNORED: Final = frozenset({"_count", "_sort", "sort:desc", "sort:asc"})


def _codings(value: Any) -> Iterable[dict[str, Any]]:
    for concept in value if isinstance(value, list) else [value]:
        if isinstance(concept, dict):
            yield from (c for c in concept.get("coding", []) if isinstance(c, dict))


def _token_matches(resource: dict[str, Any], path: str, wanted: str) -> bool:
    for option in wanted.split(","):
        system, _, code = option.rpartition("|")
        for coding in _codings(resource.get(path)):
            if coding.get("code") == code and (not system or coding.get("system") == system):
                return True
    return False


def _matches(resource: dict[str, Any], name: str, value: str) -> bool | None:
    """True/False when ``name`` can be evaluated here, None when it cannot."""
    if name in ("patient", "subject"):
        ref = value if "/" in value else f"Patient/{value}"
        return bool((resource.get("subject") or {}).get("reference") == ref)
    if name == "status":
        return resource.get("status") in value.split(",")
    if name in _TOKEN_PATHS:
        return _token_matches(resource, _TOKEN_PATHS[name][0], value)
    return None


def search(chart: list[dict[str, Any]], query: str) -> dict[str, Any] | None:
    """A FHIR read (``Type/id``) or search (``Type?params``) over ``chart``: the resource, a
    searchset Bundle, or None when the query uses a parameter this does not evaluate (the key is
    then left out of the prefetch, as CDS Hooks 2.0 §Prefetch lets a client do)."""
    path, _, params = query.partition("?")
    if not params and "/" in path:
        rtype, _, rid = path.partition("/")
        found = [r for r in chart if r["resourceType"] == rtype and r.get("id") == rid]
        return found[0] if found else None
    hits = [r for r in chart if r["resourceType"] == path]
    for name, value in urllib.parse.parse_qsl(params, keep_blank_values=True):
        if name in _IGNORED:
            continue
        verdicts = [_matches(r, name, value) for r in hits]
        if any(v is None for v in verdicts):
            return None
        hits = [r for r, keep in zip(hits, verdicts, strict=True) if keep]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(hits),
        "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r} for r in hits],
    }


def prefetch_for(templates: dict[str, str], context: dict[str, Any]) -> dict[str, Any]:
    """The prefetch a client holding the demo chart sends for a service's ``templates``: each
    ``{{context.X}}`` token filled from the hook context (CDS Hooks 2.0 §Prefetch tokens), read
    or searched in the chart; ``null`` for a read that finds nothing, absent when unanswerable."""
    chart = resources()
    prefetch: dict[str, Any] = {}
    for key, template in templates.items():
        query = template
        for name, value in context.items():
            if isinstance(value, str):
                query = query.replace("{{context." + name + "}}", value)
        if "{{" in query:
            continue  # a token this client cannot fill: leave the key out
        result = search(chart, query)
        if result is not None or "?" not in query:
            prefetch[key] = result
    return prefetch
