"""Tumour types from the knowledge base's table: resolve what a clinician or an EHR sends.

The one resolver for ``--tumor-type``, FHIR Conditions (``integrations.fhir.clinical_context``),
HL7 diagnoses (``cds_service.hl7.processing``) and the analyses API. The table is the whole
OncoTree (release 2025-10-03, CC BY 4.0, MSK) with curated mappings (``kb/tumours.py``).
Accepted forms (matching is case-insensitive):

- an OncoTree code: ``COAD``, ``LUAD``, ``BLCA``, ``HGSOC``; or a former OncoTree code that
  OncoTree maps to one current code (``MM`` → ``PCM``, ``CLL`` → ``CLLSLL``);
- a coded ``system|code``: SNOMED CT (``http://snomed.info/sct|254637007`` or ``snomed|…``),
  ICD-10-CM (``http://hl7.org/fhir/sid/icd-10-cm|C18.7``, matched by category prefix), ICD-O-3
  (``icd-o-3|8720/3``), Disease Ontology (``doid|DOID:3908``), OncoTree (``oncotree|COAD``),
  NCI thesaurus (``ncit|C3512``) and UMLS (``umls|C0152013``) as OncoTree references them;
- a plain name or synonym: ``colorectal cancer``, ``lung adenocarcinoma`` (an OncoTree name
  that two nodes share, such as "Embryonal Carcinoma", resolves by code only).

Anything else raises :class:`inference.errors.UnknownTumourTypeError` listing at most five close
matches.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Final

from inference.errors import UnknownTumourTypeError
from inference.genomics.kb.store import KnowledgeBase, load_knowledge_base
from inference.genomics.model import TumourType

_SYSTEMS: Final = {
    "http://snomed.info/sct": "snomed",
    "snomed": "snomed",
    "snomedct": "snomed",
    "sct": "snomed",
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm",
    "icd-10-cm": "icd10cm",
    "icd10cm": "icd10cm",
    "icd10": "icd10cm",
    # WHO ICD-10 shares ICD-10-CM's neoplasm categories; CM-only subcodes (C49.A, D47.02)
    # are simply never sent under it.
    "http://hl7.org/fhir/sid/icd-10": "icd10cm",
    "http://terminology.hl7.org/codesystem/icd-o-3": "icdo3",
    "urn:oid:2.16.840.1.113883.6.43.1": "icdo3",
    "icd-o-3": "icdo3",
    "icdo3": "icdo3",
    "http://purl.obolibrary.org/obo/doid.owl": "doid",
    "https://disease-ontology.org": "doid",
    "http://disease-ontology.org": "doid",
    "doid": "doid",
    "http://oncotree.mskcc.org": "oncotree",
    "https://oncotree.mskcc.org": "oncotree",
    "oncotree": "oncotree",
    "http://ncicb.nci.nih.gov/xml/owl/evs/thesaurus.owl": "ncit",
    "http://ncit.nci.nih.gov": "ncit",
    "ncit": "ncit",
    "nci": "ncit",
    "http://www.nlm.nih.gov/research/umls": "umls",
    "umls": "umls",
}
_MAX_TEXT: Final = 200


def _norm(text: str) -> str:
    # Lower case, whitespace runs collapsed (str.split: the same whitespace as regex \s).
    return " ".join(text.lower().split())


@dataclass(frozen=True, slots=True)
class _Index:
    by_code: dict[str, str]
    by_name: dict[str, str]
    by_system: dict[tuple[str, str], str]
    choices: dict[str, str]


@functools.lru_cache(maxsize=8)
def _index(kb: KnowledgeBase) -> _Index:
    by_code: dict[str, str] = {}
    by_system: dict[tuple[str, str], str] = {}
    named: dict[str, set[str]] = {}
    synonyms: dict[str, str] = {}
    shared: set[tuple[str, str]] = set()
    for code, entry in sorted(kb.tumour_types.items()):
        by_code[code.lower()] = code
        by_system[("oncotree", code.lower())] = code
        named.setdefault(_norm(entry.name), set()).add(code)
        for name in entry.synonyms:
            synonyms.setdefault(_norm(name), code)
        for system, codes in (
            ("snomed", entry.snomed),
            ("icd10cm", entry.icd10cm),
            ("icdo3", entry.icdo3),
            ("doid", entry.doid),
            ("ncit", entry.ncit),
            ("umls", entry.umls),
        ):
            for value in codes:
                key = (system, value.lower())
                if by_system.setdefault(key, code) != code:
                    shared.add(key)
    # OncoTree gives a few NCI thesaurus / UMLS ids to two nodes: those resolve to neither.
    for key in shared:
        del by_system[key]
    for alias, code in sorted(kb.tumour_aliases.items()):
        by_code.setdefault(alias.lower(), code)
        by_system.setdefault(("oncotree", alias.lower()), code)
    # A name two OncoTree nodes share says nothing about which one is meant.
    by_name = {name: next(iter(codes)) for name, codes in named.items() if len(codes) == 1}
    by_name.update(synonyms)
    choices = dict(by_name)
    for code in kb.tumour_types:
        choices.setdefault(code.lower(), code)
    return _Index(by_code, by_name, by_system, choices)


def tumour_type_for_code(code: str, kb: KnowledgeBase | None = None) -> TumourType:
    """The :class:`TumourType` of a table code (``COAD``), with its lineage."""
    kb = kb or load_knowledge_base()
    entry = kb.tumour_types[code]
    return TumourType(code=entry.code, name=entry.name, lineage=entry.lineage)


def _by_system(index: _Index, system: str, value: str) -> str | None:
    value = value.strip().lower()
    if system == "doid":
        value = value.removeprefix("doid:")
    found = index.by_system.get((system, value))
    if found is None and system in {"icd10cm", "icdo3"}:
        # ICD codes are hierarchical: C18.7 (sigmoid colon) falls under category C18.
        candidate = value
        while found is None and len(candidate) > 3:
            candidate = candidate[:-1].rstrip(".")
            found = index.by_system.get((system, candidate))
    return found


def find_tumour_type(text: str, kb: KnowledgeBase | None = None) -> TumourType | None:
    """:func:`resolve_tumour_type` without the error: None when the table does not know
    ``text``. For callers that skip what they cannot map (FHIR Conditions, HL7 diagnoses):
    an EHR sends many non-cancer codes, and close-match suggestions over ~2,000 names cost
    10-30 ms each."""
    kb = kb or load_knowledge_base()
    raw = (text or "")[:_MAX_TEXT]
    # A code (the CLI's usual --tumor-type) needs no index: building that over the whole
    # OncoTree costs a few ms, which a one-shot process would pay for nothing.
    direct = raw.strip().upper()
    code: str | None = direct if direct in kb.tumour_types else kb.tumour_aliases.get(direct)
    if code is None:
        index = _index(kb)
        if "|" in raw:
            system_text, _, value = raw.rpartition("|")
            system = _SYSTEMS.get(system_text.strip().lower())
            if system is not None:
                code = _by_system(index, system, value)
        else:
            code = index.by_code.get(raw.strip().lower()) or index.by_name.get(_norm(raw))
    return tumour_type_for_code(code, kb) if code is not None else None


def resolve_tumour_type(text: str, kb: KnowledgeBase | None = None) -> TumourType:
    """Resolve an OncoTree code, a ``system|code`` or a plain name to a :class:`TumourType`.

    Raises:
        UnknownTumourTypeError: not in the table; for a name, the error lists at most five
            close matches (an unknown ``system|code`` has none: names would not help).
    """
    kb = kb or load_knowledge_base()
    found = find_tumour_type(text, kb)
    if found is not None:
        return found
    raw = (text or "")[:_MAX_TEXT]
    seen: list[str] = []
    if "|" not in raw:
        index = _index(kb)
        close = difflib.get_close_matches(_norm(raw), list(index.choices), n=5, cutoff=0.6)
        for choice in close:
            code = index.choices[choice]
            label = f"{code} ({kb.tumour_types[code].name})"
            if label not in seen:
                seen.append(label)
    raise UnknownTumourTypeError(raw, tuple(seen))
