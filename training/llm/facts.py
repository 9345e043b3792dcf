"""The knowledge base's cited facts, as the structured findings a fine-tuned model is shown.

A :class:`Fact` is one KB item made into the input an explanation model receives at run time:
a structured finding (genes, alteration, tumour, drugs, what the source states) with the
evidence it rests on. Only cited items become facts:

- FDA label facts (``source = "FDA"``): the label URL, its section and date, the CIViC EIDs the
  curated fact cites;
- CIViC evidence items: the EID with its URL and PubMed ids;
- curated resistance rules: their CIViC EIDs, PubMed ids and URL;
- CPIC/DPWG pharmacogenomic recommendations (one fact per gene and phenotype): the guideline URL
  and PubMed ids.

A fact without a citation is refused (:class:`UncitedFactError`), never turned into a training
pair: the model must learn that every statement carries its source.

Each fact carries a *group*: facts that share any citation (a CIViC EID, a PubMed id, an FDA
label) fall into one group, and the train/held-out split is by group, so no citation of a
held-out fact was seen in training (:mod:`training.llm.pairs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from inference.genomics.kb import keys
from inference.genomics.kb.store import KnowledgeBase
from training.llm.errors import UncitedFactError

#: The sources a fact may come from (``sources`` in the config picks among them).
SOURCES: Final = ("FDA", "CIViC", "curated", "CPIC")
_CIVIC_EVIDENCE_URL: Final = "https://civicdb.org/links/evidence_items/{}"
_PUBMED_URL: Final = "https://pubmed.ncbi.nlm.nih.gov/{}/"
#: CIViC evidence levels in words (CIViC evidence level definitions,
#: https://civic.readthedocs.io/en/latest/model/evidence/level.html).
CIVIC_LEVELS: Final = {
    "A": "validated association",
    "B": "clinical evidence",
    "C": "case study",
    "D": "preclinical evidence",
    "E": "inferential association",
}


@dataclass(frozen=True, slots=True)
class Citation:
    """One source a fact rests on: ``id`` is what an answer cites (``CIViC:EID12``,
    ``PMID:16081687``, ``FDA:ZYKADIA:1``, the CPIC guideline id), ``url`` where to read it."""

    source: str
    id: str
    url: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "id": self.id, "url": self.url}


@dataclass(frozen=True, slots=True)
class Fact:
    """One cited KB item as a structured finding.

    Attributes:
        id: unique and stable across KB builds (``FDA:ZYKADIA-NSCLC-ALK``, ``CIViC:EID1``,
            ``CPIC:DPYD:DPYD poor metabolizer:0.0``).
        kind: ``fda-indication``, ``fda-not-indicated``, ``fda-withdrawn``, ``civic-predictive``,
            ``civic-diagnostic``, ``civic-prognostic``, ``curated-resistance`` or ``pgx``.
        finding: the model's input (JSON object; its ``evidence`` lists the citations).
        citations: at least one; the pair's answer cites these ids.
        group: the split unit (set by :func:`facts_from_kb`; facts sharing a citation share it).
    """

    id: str
    kind: str
    finding: Mapping[str, Any]
    citations: tuple[Citation, ...]
    group: str = field(default="")

    def __post_init__(self) -> None:
        usable = [c for c in self.citations if c.id and c.url.startswith("https://")]
        if not usable or len(usable) != len(self.citations):
            raise UncitedFactError(
                f"fact {self.id} has no citation with an id and an https URL; refused"
            )

    @property
    def citation_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.citations)


def _dedupe(citations: Iterable[Citation]) -> tuple[Citation, ...]:
    seen: set[str] = set()
    out: list[Citation] = []
    for citation in citations:
        if citation.id not in seen:
            seen.add(citation.id)
            out.append(citation)
    return tuple(out)


def _genes(statement: Mapping[str, Any]) -> list[str]:
    genes: list[str] = []
    for key in statement.get("matchers", ()):
        for gene in keys.genes_of(key):
            if gene not in genes:
                genes.append(gene)
    return genes


def _alteration(statement: Mapping[str, Any]) -> str:
    """The statement's profile, or (curated rules have none) its protein keys read back:
    ``ESR1 D538G/E380Q``, genes alone for other keys."""
    if statement.get("profile"):
        return str(statement["profile"])
    changes: dict[str, list[str]] = {}
    for key in statement.get("matchers", ()):
        parsed = keys.parse(key)
        if parsed.gene is None:
            continue
        listed = changes.setdefault(parsed.gene, [])
        if parsed.kind in (keys.KeyKind.PROTEIN, keys.KeyKind.CODON):
            listed.append(parsed.fields[0])
    return " OR ".join(f"{g} {'/'.join(c)}" if c else g for g, c in changes.items())


def _tumour(kb: KnowledgeBase, code: str | None, disease: str) -> dict[str, str]:
    entry = kb.tumour_types.get(code) if code else None
    if entry is None:
        return {"name": disease}
    return {"code": entry.code, "name": entry.name}


def _pmid_citations(pmids: Iterable[str]) -> list[Citation]:
    return [Citation("PubMed", f"PMID:{p}", _PUBMED_URL.format(p)) for p in pmids]


def _eid_citations(eids: Iterable[str]) -> list[Citation]:
    return [Citation("CIViC", f"CIViC:{e}", _CIVIC_EVIDENCE_URL.format(e[3:])) for e in eids]


def fact_from_statement(kb: KnowledgeBase, statement: Mapping[str, Any]) -> Fact:
    """The fact a compiled KB statement states.

    Raises:
        UncitedFactError: the statement has no usable citation.
    """
    source = statement.get("source")
    sid = str(statement.get("id", "?"))
    url = str(statement.get("url") or "")
    pmids = [str(p) for p in statement.get("pmids", ())]
    base: dict[str, Any] = {
        "genes": _genes(statement),
        "alteration": _alteration(statement),
        "tumour": _tumour(kb, statement.get("tumour"), str(statement.get("disease", ""))),
    }
    if source == "FDA":
        return _fda_fact(statement, sid, url, pmids, base)
    if source == "curated":
        citations = _eid_citations(statement.get("civic_eids", ())) + _pmid_citations(pmids)
        if url.startswith("https://"):
            citations.insert(0, Citation("curated", f"OncoCDS:{statement['evidence_id']}", url))
        finding = {
            **base,
            "statement": f"{statement.get('response', '')} to therapy",
            "drugs": list(statement.get("drugs", ())),
            "evidence_level": statement.get("level"),
            "summary": statement.get("disease"),
        }
        return _fact(f"curated:{sid}", "curated-resistance", finding, citations)
    if source == "CIViC":
        eid = str(statement.get("evidence_id", sid))
        citations = []
        if url.startswith("https://"):
            citations.append(Citation("CIViC", f"CIViC:{eid}", url))
        citations += _pmid_citations(pmids)
        kind = str(statement.get("kind"))
        finding = {
            **base,
            "disease": statement.get("disease"),
            "evidence_type": kind,
            "evidence_level": statement.get("level"),
            "evidence_level_meaning": CIVIC_LEVELS.get(str(statement.get("level")), "unknown"),
        }
        if kind == "predictive":
            finding["drugs"] = list(statement.get("drugs", ()))
            finding["statement"] = str(statement.get("response"))
        else:
            finding["statement"] = str(statement.get("significance", "unknown")).lower()
        return _fact(f"CIViC:{eid}", f"civic-{kind}", finding, citations)
    raise UncitedFactError(f"statement {sid}: unknown source {source!r}; refused")


def _fda_fact(
    statement: Mapping[str, Any], sid: str, url: str, pmids: list[str], base: dict[str, Any]
) -> Fact:
    citations: list[Citation] = []
    label_id = statement.get("label_id")
    if url.startswith("https://") and label_id:
        citations.append(
            Citation("FDA label", f"FDA:{label_id}:{statement.get('section', '')}", url)
        )
    citations += _eid_citations(statement.get("civic_eids", ())) + _pmid_citations(pmids)
    if statement.get("response") == "not-indicated":
        kind, says = "fda-not-indicated", "not indicated"
    elif statement.get("status") == "withdrawn":
        kind, says = "fda-withdrawn", "indication withdrawn"
    else:
        kind, says = "fda-indication", "indicated"
    finding = {
        **base,
        "statement": says,
        "drugs": list(statement.get("drugs", ())),
        "regimen": statement.get("combination"),
        "setting": statement.get("setting"),
        "line": statement.get("line"),
        "indication": statement.get("disease"),
        "evidence_level": "FDA label",
        "label": statement.get("label"),
        "label_section": statement.get("section"),
        "label_date": statement.get("version"),
        "approval": statement.get("approval"),
        "withdrawn": statement.get("withdrawn"),
    }
    return _fact(f"FDA:{sid}", kind, finding, citations)


def _fact(fid: str, kind: str, finding: dict[str, Any], citations: list[Citation]) -> Fact:
    cited = _dedupe(citations)
    finding = {k: v for k, v in finding.items() if v not in (None, "", [])}
    finding["evidence"] = [c.to_json() for c in cited]
    return Fact(id=fid, kind=kind, finding=finding, citations=cited)


def pgx_facts(kb: KnowledgeBase) -> list[Fact]:
    """One fact per pharmacogene phenotype (CPIC/DPWG recommendation, guideline cited)."""
    facts: list[Fact] = []
    for gene, table in sorted(kb.pharmacogenomics.items()):
        source = table["source"]
        citations = [Citation(source["id"].split()[0], source["id"], source["url"])]
        citations += _pmid_citations(source.get("pmids", ()))
        for index, phenotype in enumerate(table["phenotypes"]):
            finding = {
                "genes": [gene],
                "phenotype": phenotype["phenotype"],
                "drugs": list(table["drugs"]),
                "recommendation": phenotype["recommendation"],
                "guideline": source["id"],
                "guideline_version": source.get("version"),
            }
            facts.append(_fact(f"PGx:{gene}:{index}", "pgx", finding, citations))
    return facts


def facts_from_kb(
    kb: KnowledgeBase,
    *,
    sources: Iterable[str] = SOURCES,
    civic_levels: Iterable[str] = tuple(CIVIC_LEVELS),
) -> list[Fact]:
    """Every cited fact of ``kb`` from ``sources``, in a deterministic order, with its group.

    Raises:
        UncitedFactError: an item lacks a citation (the KB builder should have refused it).
    """
    wanted = set(sources)
    levels = set(civic_levels)
    facts: list[Fact] = []
    for statement in kb.statements:
        source = statement.get("source")
        if source not in wanted or (source == "CIViC" and statement.get("level") not in levels):
            continue
        facts.append(fact_from_statement(kb, statement))
    if "CPIC" in wanted:
        facts.extend(pgx_facts(kb))
    facts.sort(key=lambda f: f.id)
    return _grouped(facts)


def _grouped(facts: list[Fact]) -> list[Fact]:
    """Facts that share a citation (EID, PubMed id, FDA label, guideline) share a group: the
    group is the smallest fact id of its connected component (union-find)."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        root = parent.setdefault(node, node)
        while root != parent[root]:
            parent[root] = parent[parent[root]]
            root = parent[root]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for fact in facts:
        for citation in fact.citations:
            # An FDA label cited through different sections is still one label.
            cited = citation.id.rsplit(":", 1)[0] if citation.id.startswith("FDA:") else citation.id
            union("fact " + fact.id, "cites " + cited)
    roots: dict[str, str] = {}
    for fact in facts:
        root = find("fact " + fact.id)
        roots.setdefault(root, fact.id)  # facts are sorted: the first is the smallest id
    return [
        Fact(fact.id, fact.kind, fact.finding, fact.citations, roots[find("fact " + fact.id)])
        for fact in facts
    ]
