"""Instruction pairs from the shipped knowledge base: cited, grounded, split by fact, exported.

No torch here: these tests read the real compiled KB and the pairs built from it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from inference.genomics.kb.store import KnowledgeBase, load_knowledge_base
from training.llm.errors import UncitedFactError
from training.llm.facts import Citation, Fact, fact_from_statement, facts_from_kb
from training.llm.grounding import KbGroundingChecker, Vocabulary
from training.llm.pairs import (
    INSTRUCTIONS,
    Pair,
    PairSplit,
    build_pairs,
    export_pairs,
    read_pairs,
)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge_base()


@pytest.fixture(scope="module")
def facts(kb: KnowledgeBase) -> list[Fact]:
    return facts_from_kb(kb)


@pytest.fixture(scope="module")
def split(facts: list[Fact]) -> PairSplit:
    return build_pairs(facts, seed=0, held_out_fraction=0.2)


def _statement(kb: KnowledgeBase, source: str) -> dict[str, object]:
    return copy.deepcopy(next(s for s in kb.statements if s["source"] == source))


def test_every_source_yields_facts(facts: list[Fact]) -> None:
    kinds = {f.kind for f in facts}
    assert {"fda-indication", "fda-not-indicated", "fda-withdrawn", "civic-predictive"} <= kinds
    assert {"civic-diagnostic", "civic-prognostic", "curated-resistance", "pgx"} <= kinds


def test_every_pair_cites_its_facts_evidence(split: PairSplit) -> None:
    pairs = split.train + split.held_out
    assert len(pairs) > 5000
    for pair in pairs:
        evidence = {e["id"]: e["url"] for e in pair.input["evidence"]}
        assert pair.citations, pair.id
        assert set(pair.citations) <= set(evidence), pair.id
        assert all(evidence[c].startswith("https://") for c in pair.citations), pair.id


def test_a_known_fda_fact_cites_its_label(split: PairSplit) -> None:
    """ZYKADIA's ALK indication (label 2014-04-29; curated with CIViC EID7285)."""
    pair = next(
        p for p in split.train + split.held_out if p.id == "FDA:ZYKADIA-NSCLC-ALK#therapies"
    )
    assert pair.citations == ("FDA:ZYKADIA:1", "CIViC:EID7285")
    assert pair.input["drugs"] == ["ceritinib"]
    assert "ceritinib" in pair.answer
    assert pair.input["evidence"][0]["url"].startswith("https://dailymed.nlm.nih.gov/")


def test_a_statement_without_a_citation_is_refused(kb: KnowledgeBase) -> None:
    civic = _statement(kb, "CIViC")
    fact_from_statement(kb, civic)  # as shipped: cited, accepted
    civic["url"] = ""
    civic["pmids"] = []
    with pytest.raises(UncitedFactError, match="no citation"):
        fact_from_statement(kb, civic)

    fda = _statement(kb, "FDA")
    fda["url"] = ""
    fda["civic_eids"] = []
    fda["pmids"] = []
    with pytest.raises(UncitedFactError):
        fact_from_statement(kb, fda)


def test_a_fact_needs_an_https_citation() -> None:
    with pytest.raises(UncitedFactError):
        Fact(id="x", kind="civic-predictive", finding={}, citations=())
    with pytest.raises(UncitedFactError):
        Fact(
            id="x",
            kind="civic-predictive",
            finding={},
            citations=(
                Citation("CIViC", "CIViC:EID1", "http://civicdb.org/links/evidence_items/1"),
            ),
        )


def test_held_out_shares_no_fact_group_or_citation_with_train(split: PairSplit) -> None:
    assert split.held_out
    assert split.train

    def sides(attr: str) -> tuple[set[str], set[str]]:
        return (
            {getattr(p, attr) for p in split.train},
            {getattr(p, attr) for p in split.held_out},
        )

    train_facts, held_facts = sides("fact_id")
    assert not train_facts & held_facts
    train_groups, held_groups = sides("group")
    assert not train_groups & held_groups

    def cited(pairs: tuple[Pair, ...]) -> set[str]:
        # An FDA label counts as one source whatever section is cited.
        return {
            c.rsplit(":", 1)[0] if c.startswith("FDA:") else c for p in pairs for c in p.citations
        }

    assert not cited(split.train) & cited(split.held_out)


def test_split_is_by_fact_not_by_template(split: PairSplit) -> None:
    templates: dict[str, set[str]] = {}
    for pair in split.train + split.held_out:
        templates.setdefault(pair.fact_id, set()).add(pair.template)
    assert all(t == set(INSTRUCTIONS) for t in templates.values())


def test_split_is_deterministic_and_depends_on_the_seed(facts: list[Fact]) -> None:
    first = build_pairs(facts, seed=0, held_out_fraction=0.2)
    again = build_pairs(facts, seed=0, held_out_fraction=0.2)
    other = build_pairs(facts, seed=1, held_out_fraction=0.2)
    assert [p.id for p in first.held_out] == [p.id for p in again.held_out]
    assert {p.fact_id for p in first.held_out} != {p.fact_id for p in other.held_out}
    share = len({p.fact_id for p in first.held_out}) / len(facts)
    assert 0.1 < share < 0.3


def test_every_reference_answer_passes_the_grounding_checker(
    kb: KnowledgeBase, split: PairSplit
) -> None:
    checker = KbGroundingChecker(Vocabulary.from_kb(kb))
    failures = {p.id: checker(p.answer, p.input) for p in split.train + split.held_out}
    assert {k: v for k, v in failures.items() if v} == {}


def test_export_writes_jsonl_and_a_manifest_that_matches(
    kb: KnowledgeBase, split: PairSplit, tmp_path: Path
) -> None:
    manifest = export_pairs(split, tmp_path / "a", kb_version=kb.version, seed=0, fraction=0.2)
    export_pairs(split, tmp_path / "b", kb_version=kb.version, seed=0, fraction=0.2)
    on_disk = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["kb_version"] == kb.version
    for name, side in (("train.jsonl", split.train), ("held_out.jsonl", split.held_out)):
        body = (tmp_path / "a" / name).read_bytes()
        assert manifest["files"][name]["sha256"] == hashlib.sha256(body).hexdigest()
        assert manifest["files"][name]["pairs"] == body.count(b"\n") == len(side)
        assert body == (tmp_path / "b" / name).read_bytes()
        assert tuple(read_pairs(tmp_path / "a" / name)) == side
    assert manifest["counts"]["held_out"]["facts"] == len({p.fact_id for p in split.held_out})
    record = json.loads((tmp_path / "a" / "train.jsonl").read_text().splitlines()[0])
    assert set(record) == {
        "id",
        "fact_id",
        "group",
        "kind",
        "template",
        "instruction",
        "input",
        "output",
    }
    assert set(record["output"]) == {"answer", "citations"}
