"""The compiled knowledge base, loaded once and indexed for lookups (read-only, thread-safe).

``load_knowledge_base()`` reads the compiled JSON shipped in the package
(``inference/genomics/kb/data/oncocds-kb.json``) once per process and caches it; a path may be
given instead (tests, ``oncocds kb info --kb FILE``). After loading nothing is mutated, so one
instance is shared by every thread.
"""

from __future__ import annotations

import json
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from inference.errors import KnowledgeBaseFormatError
from inference.genomics.kb.build import CIVIC_RELEASE, FORMAT
from inference.genomics.model import Evidence

DEFAULT_KB_PATH: Final = Path(__file__).resolve().parent / "data" / "oncocds-kb.json"


@dataclass(frozen=True, slots=True)
class TumourTypeEntry:
    code: str
    name: str
    parent: str | None
    kind: str
    source: str
    synonyms: tuple[str, ...]
    doid: tuple[str, ...]
    icd10cm: tuple[str, ...]
    icdo3: tuple[str, ...]
    snomed: tuple[str, ...]
    #: This code and its ancestors, most specific first.
    lineage: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StatementView:
    """The fields of a statement the interpreter reads on its hot path, as attributes."""

    index: int
    id: str
    kind: str
    source: str
    drugs: tuple[str, ...]
    response: str | None
    tumour: str | None
    excludes: tuple[str, ...]
    context: tuple[str, ...]
    level: str
    #: CIViC "A AND B" profiles: the keys of each part; every part must be in the patient.
    all_of: tuple[frozenset[str], ...] | None = None
    #: (tumour, excludes, context): what the tumour relation depends on, as one hashable key.
    site: tuple[str | None, tuple[str, ...], tuple[str, ...]] = (None, (), ())


@dataclass(frozen=True, slots=True)
class RangeMatcher:
    key: str
    start: int
    end: int


class KnowledgeBase:
    """Indexes over the compiled KB. Build with :func:`load_knowledge_base`."""

    def __init__(self, data: dict[str, Any]) -> None:  # noqa: PLR0912 - one pass over each table
        if data.get("format") != FORMAT:
            raise KnowledgeBaseFormatError(
                f"knowledge base format {data.get('format')!r}; this OncoCDS reads {FORMAT}"
            )
        self.data = data
        self.version: str = data["version"]
        self.sources: list[dict[str, Any]] = data["sources"]
        self.counts: dict[str, Any] = data["counts"]
        self.statements: tuple[dict[str, Any], ...] = tuple(data["statements"])
        self.assertions: tuple[dict[str, Any], ...] = tuple(data["assertions"])
        self.genomic_alleles: dict[str, tuple[str, str]] = {
            k: (v[0], v[1]) for k, v in data["genomic_alleles"].items()
        }
        self.cdna_alleles: dict[str, str] = data["cdna_alleles"]
        self.drugs: dict[str, str | None] = data["drugs"]
        self.genes: frozenset[str] = frozenset(data["genes"])
        self.hereditary: dict[str, Any] = data["hereditary"]
        self._drug_status: dict[str, str] | None = None
        self.pharmacogenomics: dict[str, Any] = {
            k: v for k, v in data["pharmacogenomics"].items() if k != "version"
        }

        by_key: dict[str, list[int]] = {}
        ranges: dict[str, list[RangeMatcher]] = {}
        tmb: list[tuple[float, str]] = []
        for index, statement in enumerate(self.statements):
            for key in statement["matchers"]:
                by_key.setdefault(key, []).append(index)
                if key.startswith("R|"):
                    _, gene, start, end = key.split("|")
                    matcher = RangeMatcher(key, int(start), int(end))
                    if matcher not in ranges.setdefault(gene, []):
                        ranges[gene].append(matcher)
                elif key.startswith("TMB|"):
                    threshold = (float(key.split("|")[1]), key)
                    if threshold not in tmb:
                        tmb.append(threshold)
        self.by_key: dict[str, tuple[int, ...]] = {k: tuple(v) for k, v in by_key.items()}
        self.ranges: dict[str, tuple[RangeMatcher, ...]] = {k: tuple(v) for k, v in ranges.items()}
        self.tmb_thresholds: tuple[tuple[float, str], ...] = tuple(sorted(tmb))

        germline: dict[str, list[dict[str, Any]]] = {}
        for item in data["germline_pathogenic"]:
            for key in item["matchers"]:
                germline.setdefault(key, []).append(item)
        self.germline_pathogenic: dict[str, tuple[dict[str, Any], ...]] = {
            k: tuple(v) for k, v in germline.items()
        }
        assertions_by_eid: dict[str, list[str]] = {}
        for assertion in self.assertions:
            for eid in assertion["evidence_ids"]:
                assertions_by_eid.setdefault(eid, []).append(assertion["id"])
        self.assertions_by_eid = {k: tuple(v) for k, v in assertions_by_eid.items()}
        self.assertions_by_id = {a["id"]: a for a in self.assertions}
        # Evidence objects are immutable: build them once, share them across calls and threads.
        self.statement_evidence: tuple[Evidence, ...] = tuple(
            _statement_evidence(s) for s in self.statements
        )
        self.statement_refs: tuple[tuple[Evidence, ...], ...] = tuple(
            self._refs(s) for s in self.statements
        )
        self.views: tuple[StatementView, ...] = tuple(
            StatementView(
                index=i,
                id=s["id"],
                kind=s["kind"],
                source=s["source"],
                drugs=tuple(s.get("drugs", ())),
                response=s.get("response"),
                tumour=s.get("tumour"),
                excludes=tuple(s.get("excludes", ())),
                context=tuple(s.get("context", ())),
                level=s["level"],
                all_of=tuple(frozenset(part) for part in s["all_of"]) if "all_of" in s else None,
                site=(
                    s.get("tumour"),
                    tuple(s.get("excludes", ())),
                    tuple(s.get("context", ())),
                ),
            )
            for i, s in enumerate(self.statements)
        )

        self.tumour_types: dict[str, TumourTypeEntry] = {}
        raw_types = {t["code"]: t for t in data["tumour_types"]}
        for code, raw in raw_types.items():
            lineage = [code]
            while raw_types[lineage[-1]]["parent"] is not None:
                lineage.append(raw_types[lineage[-1]]["parent"])
            self.tumour_types[code] = TumourTypeEntry(
                code=code,
                name=raw["name"],
                parent=raw["parent"],
                kind=raw["kind"],
                source=raw["source"],
                synonyms=tuple(raw["synonyms"]),
                doid=tuple(raw["doid"]),
                icd10cm=tuple(raw["icd10cm"]),
                icdo3=tuple(raw["icdo3"]),
                snomed=tuple(raw["snomed"]),
                lineage=tuple(lineage),
            )

    def _refs(self, statement: dict[str, Any]) -> tuple[Evidence, ...]:
        """CIViC items a curated statement cites, and the assertions a CIViC item is part of."""
        refs = [
            Evidence(
                source="CIViC",
                id=eid,
                url=_CIVIC_EVIDENCE_URL.format(eid[3:]),
                version=CIVIC_RELEASE,
            )
            for eid in statement.get("civic_eids", ())
        ]
        for aid in self.assertions_by_eid.get(statement["evidence_id"], ()):
            assertion = self.assertions_by_id[aid]
            refs.append(
                Evidence(
                    source="CIViC",
                    id=aid,
                    url=assertion["url"],
                    level=assertion["amp_category"] or None,
                    version=CIVIC_RELEASE,
                )
            )
        return tuple(refs)

    def drug_status(self, name: str) -> str | None:
        """The curated US status of a drug (``approved``, ``withdrawn``, ``investigational``,
        ``preclinical``, ``class``), by generic name, synonym, brand or CIViC name; ``None``
        when the drug table does not list it (unknown: never guessed)."""
        table = self._drug_status
        if table is None:
            table = self._drug_status = _drug_status_table(self.data)
        return table.get(name.strip().lower())

    def statements_for(self, keys: list[str]) -> list[int]:
        """Indices of the statements matching any of ``keys``, each once, in KB order."""
        indices: set[int] = set()
        for key in keys:
            indices.update(self.by_key.get(key, ()))
        return sorted(indices)


_CIVIC_EVIDENCE_URL = "https://civicdb.org/links/evidence_items/{}"
_DRUGS_TOML: Final = Path(__file__).resolve().parent / "sources" / "curated" / "drugs.toml"


def _drug_status_table(data: dict[str, Any]) -> dict[str, str]:
    """Drug name (lower case) → curated status.

    TRANSITIONAL (issue 12, until the builder writes ``drug_status`` into the compiled KB):
    a compiled ``drug_status`` table is used when present; otherwise the curated
    ``sources/curated/drugs.toml`` shipped beside this module is read once. Remove the
    fallback when every shipped KB carries the table.
    """
    compiled = data.get("drug_status")
    if isinstance(compiled, dict) and compiled:
        return {str(k).lower(): str(v) for k, v in compiled.items()}
    try:
        with _DRUGS_TOML.open("rb") as handle:
            curated = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    drugs = [d for d in curated.get("drug", []) if d.get("status")]
    # Generic names first, so another drug's synonym never shadows a generic name.
    table = {str(d["name"]).strip().lower(): str(d["status"]) for d in drugs if d.get("name")}
    for drug in drugs:
        for name in (
            *drug.get("synonyms", []),
            *drug.get("civic_names", []),
            *drug.get("brands", []),
        ):
            table.setdefault(str(name).strip().lower(), str(drug["status"]))
    return table


def _statement_evidence(statement: dict[str, Any]) -> Evidence:
    level = statement["level"]
    return Evidence(
        source=statement["source"],
        id=statement["evidence_id"],
        url=statement["url"],
        pmids=tuple(statement["pmids"]),
        level="FDA label" if level == "label" else level,
        version=statement["version"],
    )


_lock = threading.Lock()
_cache: dict[Path, KnowledgeBase] = {}


def read_knowledge_base(path: Path) -> KnowledgeBase:
    """Read and index a compiled KB file (uncached).

    Raises:
        KnowledgeBaseFormatError: the file is missing, not JSON, or of another format.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KnowledgeBaseFormatError(
            f"compiled knowledge base {path} not found; run 'oncocds kb build'"
        ) from exc
    except (OSError, ValueError) as exc:
        raise KnowledgeBaseFormatError(f"{path}: not a readable knowledge base ({exc})") from exc
    if not isinstance(data, dict):
        raise KnowledgeBaseFormatError(f"{path}: not a knowledge base object")
    try:
        return KnowledgeBase(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise KnowledgeBaseFormatError(f"{path}: malformed knowledge base ({exc!r})") from exc


def load_knowledge_base(path: Path | None = None) -> KnowledgeBase:
    """The knowledge base at ``path`` (default: the one shipped), loaded once per process."""
    # Looked up by the path as given first: resolve() is a realpath() with a stat per
    # component, and services ask for the knowledge base on every call (12 % of a
    # patient-view under load, bench/bench_patient_view.py).
    # (Absolute paths only: a relative one means another file after a chdir.)
    given = path or DEFAULT_KB_PATH
    kb = _cache.get(given) if given.is_absolute() else None
    if kb is not None:
        return kb
    resolved = given.resolve()
    kb = _cache.get(resolved)
    if kb is not None:
        if given.is_absolute():
            _cache[given] = kb
        return kb
    with _lock:
        kb = _cache.get(resolved)
        if kb is None:
            kb = read_knowledge_base(resolved)
            _cache[resolved] = kb
        if given.is_absolute():
            _cache[given] = kb
    return kb
