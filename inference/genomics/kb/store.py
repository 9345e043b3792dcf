"""The compiled knowledge base, loaded once and indexed for lookups (read-only, thread-safe).

``load_knowledge_base()`` reads the compiled JSON shipped in the package
(``inference/genomics/kb/data/oncocds-kb.json``) once per process and caches it; a path may be
given instead (tests, ``oncocds kb info --kb FILE``). After loading nothing is mutated, so one
instance is shared by every thread.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from inference.errors import KnowledgeBaseFormatError
from inference.genomics.kb import keys
from inference.genomics.kb.build import FORMAT
from inference.genomics.kb.civic import CIVIC_RELEASE
from inference.genomics.model import Evidence

DEFAULT_KB_PATH: Final = Path(__file__).resolve().parent / "data" / "oncocds-kb.json"


@dataclass(frozen=True, slots=True)
class TumourTypeEntry:
    """One node of the tumour table: an OncoTree code (``source == "oncotree"``) or a local one
    (the roots ``CANCER``/``SOLID``/``HEME`` and the few types OncoTree lacks)."""

    code: str
    name: str
    parent: str | None
    #: ``solid``, ``heme`` or ``any`` (the local root ``CANCER`` only).
    kind: str
    source: str
    synonyms: tuple[str, ...]
    doid: tuple[str, ...]
    icd10cm: tuple[str, ...]
    icdo3: tuple[str, ...]
    snomed: tuple[str, ...]
    #: This code and its ancestors, most specific first.
    lineage: tuple[str, ...]
    #: The same codes as a set, for :meth:`KnowledgeBase.is_within`.
    ancestors: frozenset[str] = frozenset()
    #: OncoTree's main type ("Non-Small Cell Lung Cancer") and tissue ("Lung"); None for local.
    main_type: str | None = None
    tissue: str | None = None
    #: Former OncoTree codes that now mean this type (``MM`` → ``PCM``, ``CLL`` → ``CLLSLL``).
    aliases: tuple[str, ...] = ()
    #: NCI thesaurus and UMLS concept ids from OncoTree's external references.
    ncit: tuple[str, ...] = ()
    umls: tuple[str, ...] = ()


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
    #: The statement's matchers other than gene-level ``MUT|gene`` ("any mutation") keys: an
    #: alteration matching none of them matches the statement at gene level only.
    specific: frozenset[str] = frozenset()
    #: The patient origin an FDA fact requires (``germline``/``somatic``); ``None``: any.
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class RangeMatcher:
    key: str
    start: int
    end: int


class KnowledgeBase:
    """Indexes over the compiled KB. Build with :func:`load_knowledge_base`."""

    def __init__(self, data: dict[str, Any]) -> None:
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
        #: Drug name, synonym, brand or CIViC name (lower case) → curated status (compiled by
        #: the builder from ``curated/drugs.toml``).
        self._drug_status: dict[str, str] = data.get("drug_status", {})
        self.pharmacogenomics: dict[str, Any] = {
            k: v for k, v in data["pharmacogenomics"].items() if k != "version"
        }

        by_key: dict[str, list[int]] = {}
        ranges: dict[str, list[RangeMatcher]] = {}
        tmb: list[tuple[float, str]] = []
        for index, statement in enumerate(self.statements):
            for key in statement["matchers"]:
                by_key.setdefault(key, []).append(index)
                codon_range = keys.codon_range_of(key)
                if codon_range is not None:
                    gene, start, end = codon_range
                    matcher = RangeMatcher(key, start, end)
                    if matcher not in ranges.setdefault(gene, []):
                        ranges[gene].append(matcher)
                    continue
                tmb_min = keys.tmb_threshold_of(key)
                if tmb_min is not None and (tmb_min, key) not in tmb:
                    tmb.append((tmb_min, key))
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
                kind=_view_kind(s),
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
                specific=frozenset(
                    m for m in s["matchers"] if not m.startswith(_GENE_LEVEL_PREFIX)
                ),
                origin=s.get("origin") if s.get("origin") in keys.ORIGINS else None,
            )
            for i, s in enumerate(self.statements)
        )

        self._load_tumour_types(data["tumour_types"])

    def _load_tumour_types(self, tumour_types: list[dict[str, Any]]) -> None:
        """Tumour types with their lineage precomputed (matching never walks the tree)."""
        self.tumour_types: dict[str, TumourTypeEntry] = {}
        #: Former OncoTree codes → the current code.
        self.tumour_aliases: dict[str, str] = {}
        raw_types = {t["code"]: t for t in tumour_types}
        lineages: dict[str, tuple[str, ...]] = {}
        for code, raw in raw_types.items():
            lineage = [code]
            while raw_types[lineage[-1]]["parent"] is not None:
                lineage.append(raw_types[lineage[-1]]["parent"])
            lineages[code] = tuple(lineage)
            self.tumour_types[code] = TumourTypeEntry(
                code=code,
                name=raw["name"],
                parent=raw["parent"],
                kind=raw["kind"],
                source=raw["source"],
                synonyms=tuple(raw.get("synonyms", ())),
                doid=tuple(raw.get("doid", ())),
                icd10cm=tuple(raw.get("icd10cm", ())),
                icdo3=tuple(raw.get("icdo3", ())),
                snomed=tuple(raw.get("snomed", ())),
                lineage=lineages[code],
                ancestors=frozenset(lineages[code]),
                main_type=raw.get("main_type"),
                tissue=raw.get("tissue"),
                aliases=tuple(raw.get("aliases", ())),
                ncit=tuple(raw.get("ncit", ())),
                umls=tuple(raw.get("umls", ())),
            )
            for alias in raw.get("aliases", ()):
                self.tumour_aliases[alias] = code

    def is_within(self, code: str, ancestor: str) -> bool:
        """Whether tumour type ``code`` is ``ancestor`` or lies below it (LUAD within NSCLC,
        any solid OncoTree code within SOLID). Unknown codes are within nothing."""
        entry = self.tumour_types.get(code)
        return entry is not None and ancestor in entry.ancestors

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
        return self._drug_status.get(name.strip().lower())

    def statements_for(self, keys: list[str]) -> list[int]:
        """Indices of the statements matching any of ``keys``, each once, in KB order."""
        indices: set[int] = set()
        for key in keys:
            indices.update(self.by_key.get(key, ()))
        return sorted(indices)


_CIVIC_EVIDENCE_URL = "https://civicdb.org/links/evidence_items/{}"
#: Gene-level "any mutation" keys (``MUT|gene``, :func:`keys.mutation`).
_GENE_LEVEL_PREFIX: Final = keys.KeyKind.MUTATION.value + "|"
#: View kinds of FDA statements the interpreter reads apart from indications: a label exclusion
#: (``response = "not-indicated"``: the regimen is not to be offered for the matching alteration
#: in the label's tumour) and a withdrawn indication (never offered as approved). The
#: statements keep ``kind = "predictive"`` in the KB; :mod:`..interpret` reads the views.
NOT_INDICATED_VIEW: Final = "label-exclusion"
WITHDRAWN_VIEW: Final = "withdrawn-label"


def _view_kind(statement: dict[str, Any]) -> str:
    kind = str(statement["kind"])
    if kind != "predictive" or statement.get("source") != "FDA":
        return kind
    if statement.get("response") == "not-indicated":
        return NOT_INDICATED_VIEW
    if statement.get("status") == "withdrawn":
        return WITHDRAWN_VIEW
    return kind


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
