"""AMP/ASCO/CAP 2017 tier rules (Li et al., J Mol Diagn 2017, PMID 27993330) as PCGR applies
them (sigven/pcgr ``variant_classification.Rmd`` v2.3), one rule per test; see ``tiering.py``."""

from __future__ import annotations

import pytest

from inference.genomics import tiering
from inference.genomics.model import EvidenceLevel, Tier, TierAssignment, TumourType
from inference.genomics.tiering import (
    PAN_CANCER,
    Relation,
    best,
    context_conflicts,
    context_missing,
    rank,
    tier_and_rank,
    tier_for,
    tumour_relation,
)

#: Lung adenocarcinoma and its ancestors as the curated table holds them (most specific first).
LUAD = TumourType("LUAD", "Lung Adenocarcinoma", ("LUAD", "NSCLC", "LUNG", "SOLID", "CANCER"))
ANY_CANCER = TumourType("CANCER", "Cancer", ("CANCER",))
NONE: frozenset[str] = frozenset()


@pytest.fixture(autouse=True)
def _empty_memos(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test computes its tiers afresh, not from a memo an earlier test filled (so the
    table below checks the rule itself, and mutation testing sees which test runs it)."""
    monkeypatch.setattr(tiering, "_TIER_MEMO", {})
    monkeypatch.setattr(tiering, "_TIER_RANK_MEMO", {})


# ------------------------------------------------------------------ clinical context tags


def test_a_required_tag_is_contradicted_by_its_opposite() -> None:
    assert context_conflicts(["HER2+"], frozenset({"HER2-"})) == ["HER2+"]
    assert context_conflicts(["HER2-"], frozenset({"HER2+"})) == ["HER2-"]
    assert context_conflicts(["HER2+"], frozenset({"HER2+"})) == []
    assert context_conflicts(["HER2+"], NONE) == []
    assert context_conflicts(["HER2+", "ER+"], frozenset({"HER2-", "ER-"})) == ["HER2+", "ER+"]


def test_hormone_receptor_positive_needs_both_receptors_negative_to_conflict() -> None:
    """HR+ = ER+ and/or PR+: only HR-, or ER- with PR-, contradicts it."""
    assert context_conflicts(["HR+"], frozenset({"HR-"})) == ["HR+"]
    assert context_conflicts(["HR+"], frozenset({"ER-", "PR-"})) == ["HR+"]
    assert context_conflicts(["HR+"], frozenset({"ER-"})) == []
    assert context_conflicts(["HR+"], frozenset({"PR-"})) == []
    assert context_conflicts(["HR+"], frozenset({"ER-", "PR+"})) == []


def test_missing_tags_are_those_the_context_does_not_state() -> None:
    assert context_missing(["HER2-"], NONE) == ["HER2-"]
    assert context_missing(["HER2-"], frozenset({"HER2-"})) == []
    assert context_missing(["HER2-", "ER+"], frozenset({"ER+"})) == ["HER2-"]
    assert context_missing(["HR+"], NONE) == ["HR+"]
    for stated in ("HR+", "ER+", "PR+"):
        assert context_missing(["HR+"], frozenset({stated})) == []
    assert context_missing(["HR+"], frozenset({"ER-", "PR-"})) == ["HR+"]


# ------------------------------------------------------------------ tumour site


def test_a_statement_for_the_tumour_or_an_ancestor_matches() -> None:
    for code in ("LUAD", "NSCLC", "LUNG"):
        assert tumour_relation(code, (), (), LUAD, NONE) is Relation.MATCH


def test_a_statement_for_another_tumour_or_none_is_other() -> None:
    assert tumour_relation("COADREAD", (), (), LUAD, NONE) is Relation.OTHER
    assert tumour_relation(None, (), (), LUAD, NONE) is Relation.OTHER


def test_a_label_exclusion_on_the_lineage_excludes_the_statement() -> None:
    assert tumour_relation("SOLID", ("NSCLC",), (), LUAD, NONE) is Relation.EXCLUDED
    assert tumour_relation("SOLID", ("COADREAD",), (), LUAD, NONE) is Relation.MATCH
    # the exclusion is checked before the tumour-agnostic mode; no tumour type, nothing excluded
    assert tumour_relation("CANCER", ("CANCER",), (), ANY_CANCER, NONE) is Relation.EXCLUDED
    assert tumour_relation("CANCER", ("CANCER",), (), None, NONE) is Relation.MATCH


def test_a_contradicted_context_tag_makes_a_matching_statement_other() -> None:
    assert tumour_relation("LUAD", (), ("HER2+",), LUAD, frozenset({"HER2-"})) is Relation.OTHER
    assert tumour_relation("LUAD", (), ("HER2+",), LUAD, NONE) is Relation.MATCH
    assert tumour_relation("LUAD", (), ("HER2+",), LUAD, frozenset({"HER2+"})) is Relation.MATCH


@pytest.mark.parametrize("tumour", [None, ANY_CANCER], ids=["no-tumour", "any-cancer"])
def test_without_a_tumour_type_only_pan_cancer_statements_match(tumour: TumourType | None) -> None:
    assert {"CANCER", "SOLID"} == PAN_CANCER
    for code in PAN_CANCER:
        assert tumour_relation(code, (), (), tumour, NONE) is Relation.MATCH
    assert tumour_relation("LUAD", (), (), tumour, NONE) is Relation.OTHER
    assert tumour_relation(None, (), (), tumour, NONE) is Relation.OTHER


# ------------------------------------------------------------------ tier table

#: Li et al. 2017 Table 2 as PCGR reads it: (source level, relation) → tier, level.
TABLE = [
    ("label", Relation.MATCH, Tier.I, EvidenceLevel.A),
    ("A", Relation.MATCH, Tier.I, EvidenceLevel.B),
    ("B", Relation.MATCH, Tier.I, EvidenceLevel.B),
    ("C", Relation.MATCH, Tier.II, EvidenceLevel.C),
    ("D", Relation.MATCH, Tier.II, EvidenceLevel.D),
    ("E", Relation.MATCH, Tier.II, EvidenceLevel.D),
    ("label", Relation.OTHER, Tier.II, EvidenceLevel.C),
    ("A", Relation.OTHER, Tier.II, EvidenceLevel.C),
    ("B", Relation.OTHER, Tier.II, EvidenceLevel.C),
    ("C", Relation.OTHER, Tier.III, None),
    ("D", Relation.OTHER, Tier.III, None),
    ("E", Relation.OTHER, Tier.III, None),
]


@pytest.mark.parametrize(("level", "relation", "tier", "tier_level"), TABLE)
def test_tier_table(
    level: str, relation: Relation, tier: Tier, tier_level: EvidenceLevel | None
) -> None:
    expected = TierAssignment(tier, tier_level)
    assert tier_for(level, relation) == expected
    assert tier_for(level, relation) == expected  # memoised: the same answer again
    assigned, order = tier_and_rank(level, relation)
    assert assigned == expected
    assert order == rank(expected)


def test_rank_orders_tier_then_level_and_best_takes_the_strongest() -> None:
    i_a = TierAssignment(Tier.I, EvidenceLevel.A)
    i_b = TierAssignment(Tier.I, EvidenceLevel.B)
    ii_c = TierAssignment(Tier.II, EvidenceLevel.C)
    ii_d = TierAssignment(Tier.II, EvidenceLevel.D)
    iii = TierAssignment(Tier.III)
    iv = TierAssignment(Tier.IV)
    assert rank(i_a) == (0, 0)
    assert rank(i_b) == (0, 1)
    assert rank(ii_c) == (1, 2)
    assert rank(ii_d) == (1, 3)
    assert rank(iii) == (2, 9)
    assert rank(iv) == (3, 9)
    assert best([iii, ii_d, i_b, ii_c]) == i_b
    assert best([iv, iii]) == iii
    assert best([ii_d, ii_c]) == ii_c
    assert best([i_b, i_a]) == i_a
