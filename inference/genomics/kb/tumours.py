"""The tumour-type table of the knowledge base: the whole OncoTree plus the curated mappings.

Sources:

- ``sources/oncotree/oncotree_2025_10_03.json``: the OncoTree release (CC BY 4.0, MSK), checked
  by sha256. Every node becomes a tumour type with its OncoTree code, name, main type, tissue
  and parent; its former codes (``history``, ``precursors`` and single-target ``revocations``)
  become aliases, its UMLS and NCI thesaurus references codes the resolver knows.
- ``sources/curated/tumour_types.toml``: the local roots (``CANCER`` ⊃ ``SOLID``, ``HEME``)
  that tumour-agnostic FDA facts need, which OncoTree tissue hangs under which root, the few
  local types OncoTree lacks, and per type the Disease Ontology ids CIViC uses, SNOMED CT /
  ICD-10-CM / ICD-O-3 codes and synonyms.

OncoTree's root ``TISSUE`` is the local ``CANCER``; OncoTree decides every OncoTree code's name
and parent (the curated file may not override them). The builder refuses unknown parents,
cycles, a code or DOID mapped twice, and a synonym or code that would resolve to two types.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Final, NamedTuple

from inference.errors import KnowledgeBaseSourceError

ONCOTREE_RELEASE: Final = "2025-10-03"
ONCOTREE_FILE: Final = "oncotree_2025_10_03.json"
ONCOTREE_SHA256: Final = "613c84ebecce7b47fb6800a94efecf8c7edbc25120401d898591d3b478c36231"
ONCOTREE_ROOT: Final = "TISSUE"
ONCOTREE_ATTRIBUTION: Final = (
    f"OncoTree (release {ONCOTREE_RELEASE}), Memorial Sloan Kettering Cancer Center, "
    "CC BY 4.0 (Kundra et al., JCO Clin Cancer Inform 2021;5:221-230)"
)
_CODE_SYSTEMS: Final = ("snomed", "icd10cm", "icdo3")
_KINDS: Final = frozenset({"any", "solid", "heme"})
_ALWAYS: Final = frozenset({"code", "name", "parent", "kind", "source"})


class TumourTable(NamedTuple):
    types: list[dict[str, Any]]
    #: CIViC DOID → tumour code.
    doid_map: dict[str, str]
    #: CIViC disease name (rows without a DOID) → tumour code.
    names_map: dict[str, str]
    #: DOID → clinical-context tags evidence on it requires (receptor status).
    doid_context: dict[str, list[str]]
    #: The ``sources`` entry of the compiled KB (release, licence, attribution, file hash).
    source: dict[str, Any]
    #: Changes with the OncoTree file and with this builder module (part of the KB version).
    fingerprint: str


def _norm(text: str) -> str:
    # Lower case, whitespace runs collapsed (str.split: the same whitespace as regex \s).
    return " ".join(text.lower().split())


def _read_oncotree(directory: Path) -> dict[str, Any]:
    path = directory / ONCOTREE_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise KnowledgeBaseSourceError(f"missing knowledge-base source {path}") from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != ONCOTREE_SHA256:
        raise KnowledgeBaseSourceError(
            f"{path}: sha256 {digest} is not the vendored OncoTree {ONCOTREE_RELEASE} release"
        )
    data = json.loads(raw)
    return dict(data[ONCOTREE_ROOT])


def _oncotree_nodes(root: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every node below the root, by code, with its OncoTree parent (children walked in order)."""
    nodes: dict[str, dict[str, Any]] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node["children"].values():
            if child["code"] in nodes:
                raise KnowledgeBaseSourceError(f"OncoTree code {child['code']} appears twice")
            nodes[child["code"]] = child
            stack.append(child)
    return nodes


def _aliases(nodes: dict[str, dict[str, Any]], root: dict[str, Any]) -> dict[str, list[str]]:
    """Former codes → the node that now holds them; a code claimed by two nodes is dropped
    (OncoTree revoked ``ALL`` into both ``BLL`` and ``TLL``: which one is unknown)."""
    claims: dict[str, set[str]] = {}
    for code, node in nodes.items():
        for former in [*node["history"], *node["precursors"], *node["revocations"]]:
            if former != code:
                claims.setdefault(former, set()).add(code)
    aliases: dict[str, list[str]] = {}
    for former, holders in claims.items():
        if len(holders) == 1 and former not in nodes and former != root["code"]:
            aliases.setdefault(holders.pop(), []).append(former)
    return {code: sorted(found) for code, found in aliases.items()}


def _record(code: str, name: str, parent: str | None, source: str) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "parent": parent,
        "kind": None,
        "source": source,
        "main_type": None,
        "tissue": None,
        "aliases": [],
        "synonyms": [],
        "doid": [],
        "icd10cm": [],
        "icdo3": [],
        "snomed": [],
        "ncit": [],
        "umls": [],
    }


def _merge_curated(record: dict[str, Any], entry: dict[str, Any]) -> None:
    record["synonyms"] = sorted(set(record["synonyms"]) | set(entry.get("synonyms", [])))
    record["doid"] = sorted(set(entry.get("doid", [])) | set(entry.get("doid_context", {})))
    for system in _CODE_SYSTEMS:
        record[system] = sorted(entry.get(system, []))


def tumour_types(data: dict[str, Any], oncotree_dir: Path) -> TumourTable:
    """Build the tumour table from the curated TOML (parsed) and the OncoTree release.

    Raises:
        KnowledgeBaseSourceError: the release is altered, or the curated table is inconsistent.
    """
    root = _read_oncotree(oncotree_dir)
    nodes = _oncotree_nodes(root)
    settings = data["oncotree"]
    root_code: str = settings["root"]
    heme_tissues = set(settings["heme_tissues"])
    if not heme_tissues <= set(root["children"]):
        raise KnowledgeBaseSourceError(f"heme_tissues {sorted(heme_tissues)}: not OncoTree tissues")

    records: dict[str, dict[str, Any]] = {}
    for code, node in nodes.items():
        parent = node["parent"]
        if parent == ONCOTREE_ROOT:
            parent = settings["heme_root"] if code in heme_tissues else settings["solid_root"]
        record = _record(code, node["name"], parent, "oncotree")
        record["main_type"] = node["mainType"]
        record["tissue"] = node["tissue"]
        record["ncit"] = sorted(node["externalReferences"].get("NCI", []))
        record["umls"] = sorted(node["externalReferences"].get("UMLS", []))
        records[code] = record
    for code, former in _aliases(nodes, root).items():
        records[code]["aliases"] = former

    doid_map, names_map, doid_context = _apply_curated(records, nodes, data["type"])
    _check_tree(records)
    if root_code not in records or records[root_code]["parent"] is not None:
        raise KnowledgeBaseSourceError(f"tumour root {root_code}: not a local type without parent")
    records[root_code]["aliases"] = sorted({*records[root_code]["aliases"], ONCOTREE_ROOT})
    _check_unambiguous(records)
    source = {
        "name": "OncoTree",
        "release": ONCOTREE_RELEASE,
        "licence": "CC-BY-4.0",
        "attribution": ONCOTREE_ATTRIBUTION,
        "url": "https://oncotree.mskcc.org",
        "files": {ONCOTREE_FILE: ONCOTREE_SHA256},
    }
    # Empty lists and unknown fields are left out of the compiled file (a quarter of its
    # tumour bytes; the loader defaults them), the identifying fields always stay.
    types = [
        {k: v for k, v in record.items() if k in _ALWAYS or v not in (None, [])}
        for record in sorted(records.values(), key=lambda t: t["code"])
    ]
    fingerprint = hashlib.sha256(
        (ONCOTREE_SHA256 + hashlib.sha256(Path(__file__).read_bytes()).hexdigest()).encode()
    ).hexdigest()
    return TumourTable(types, doid_map, names_map, doid_context, source, fingerprint)


def _apply_curated(
    records: dict[str, dict[str, Any]],
    nodes: dict[str, dict[str, Any]],
    entries: list[dict[str, Any]],
) -> tuple[dict[str, str], dict[str, str], dict[str, list[str]]]:
    """Add the local types and merge each curated entry's mappings onto its type."""
    doid_map: dict[str, str] = {}
    names_map: dict[str, str] = {}
    doid_context: dict[str, list[str]] = {}
    for entry in entries:
        code = entry["code"]
        if entry.get("source") == "local":
            if code in records:
                raise KnowledgeBaseSourceError(f"tumour type {code}: local code defined twice")
            records[code] = _record(code, entry["name"], entry.get("parent"), "local")
            records[code]["kind"] = entry.get("kind")
        elif code not in nodes:
            raise KnowledgeBaseSourceError(
                f"tumour type {code}: not an OncoTree {ONCOTREE_RELEASE} code (mark local ones"
                ' source = "local")'
            )
        elif "parent" in entry or "name" in entry or "kind" in entry:
            raise KnowledgeBaseSourceError(
                f"tumour type {code}: OncoTree sets its name, parent and kind; add synonyms instead"
            )
        _merge_curated(records[code], entry)
        for doid in records[code]["doid"]:
            if doid in doid_map:
                raise KnowledgeBaseSourceError(f"DOID {doid} mapped twice")
            doid_map[doid] = code
        for name in entry.get("civic_names", []):
            names_map[name] = code
        for doid, tags in entry.get("doid_context", {}).items():
            doid_context[doid] = sorted(tags)
    return doid_map, names_map, doid_context


def _check_tree(records: dict[str, dict[str, Any]]) -> None:
    for record in records.values():
        parent = record["parent"]
        if parent is not None and parent not in records:
            raise KnowledgeBaseSourceError(f"tumour type {record['code']}: unknown parent {parent}")
        if record["kind"] is not None and record["kind"] not in _KINDS:
            raise KnowledgeBaseSourceError(f"tumour type {record['code']}: kind {record['kind']}")
    for record in records.values():
        seen, node = {record["code"]}, record
        while node["parent"] is not None:
            if node["parent"] in seen:
                raise KnowledgeBaseSourceError(f"tumour type {record['code']}: cycle in parents")
            seen.add(node["parent"])
            node = records[node["parent"]]
    # Kinds fill down the hierarchy (solid/heme), so matching never walks the tree at run time.
    for record in records.values():
        node = record
        while node["kind"] is None and node["parent"] is not None:
            node = records[node["parent"]]
        record["kind"] = node["kind"] or "any"


def _check_unambiguous(records: dict[str, dict[str, Any]]) -> None:
    """Codes, aliases and curated synonyms each name one type, and no synonym is another type's
    name. (OncoTree itself repeats a few names across tissues, e.g. "Embryonal Carcinoma" of
    the testis and of the vagina: the resolver resolves those by code only.) Coded mappings
    (SNOMED CT, ICD) name one type each."""
    codes: dict[str, str] = {}
    for record in records.values():
        for value in (record["code"], *record["aliases"]):
            if codes.setdefault(value.lower(), record["code"]) != record["code"]:
                raise KnowledgeBaseSourceError(f"tumour code or alias {value} names two types")
    names: dict[str, set[str]] = {}
    for record in records.values():
        names.setdefault(_norm(record["name"]), set()).add(record["code"])
    synonyms: dict[str, str] = {}
    for record in records.values():
        for value in record["synonyms"]:
            key = _norm(value)
            holder = synonyms.setdefault(key, record["code"])
            others = names.get(key, set()) - {record["code"]}
            if holder != record["code"] or others:
                raise KnowledgeBaseSourceError(
                    f"tumour synonym {value!r} of {record['code']} also names "
                    f"{', '.join(sorted(others | {holder} - {record['code']}))}"
                )
    for system in _CODE_SYSTEMS:
        mapped: dict[str, str] = {}
        for record in records.values():
            for value in record[system]:
                holder = mapped.setdefault(value.upper(), record["code"])
                if holder != record["code"]:
                    raise KnowledgeBaseSourceError(
                        f"{system} {value} mapped to {holder} and {record['code']}"
                    )
