"""AMP/ASCO/CAP 2017 tiers (Li et al., J Mol Diagn 2017;19:4-23, PMID 27993330).

The rule is PCGR's published one (sigven/pcgr ``variant_classification.Rmd``, v2.3):

- evidence strength: FDA label or guideline, CIViC level A or B = **strong**; CIViC C, D, E =
  **weak**;
- tumour site: the statement's tumour type is the patient's or one of its ancestors in the
  tumour table (the whole OncoTree under the local roots: lung adenocarcinoma ⊂ NSCLC ⊂ lung ⊂
  solid ⊂ any cancer; a ``SOLID`` statement covers every solid OncoTree type and no
  haematological one), or pan-cancer, = **matching**; anything else = **other**;
- matching + strong → Tier I (level A for FDA/guideline, B otherwise); other + strong → Tier II
  level C; matching + weak → Tier II (level C for CIViC C, D for D/E); other + weak → Tier III;
  known benign → Tier IV.
- Without a tumour type (or "any cancer") the tumour-agnostic mode applies: pan-cancer
  statements match, tumour-specific ones count as "other".

Only treatment-sensitivity evidence defines an alteration's tier (PCGR ≥ 2.3); resistance,
diagnostic and prognostic statements get a tier for display but never set the alteration's.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from inference.genomics.model import EvidenceLevel, Tier, TierAssignment, TumourType

PAN_CANCER: Final = frozenset({"CANCER", "SOLID"})
_STRONG: Final = frozenset({"A", "B", "label"})
_TIER_RANK: Final = {Tier.I: 0, Tier.II: 1, Tier.III: 2, Tier.IV: 3}
_LEVEL_RANK: Final = {
    EvidenceLevel.A: 0,
    EvidenceLevel.B: 1,
    EvidenceLevel.C: 2,
    EvidenceLevel.D: 3,
}


class Relation(StrEnum):
    MATCH = "match"
    OTHER = "other"
    #: The label excludes the patient's tumour type: the statement does not apply at all.
    EXCLUDED = "excluded"


def _opposite(tag: str) -> str:
    return tag[:-1] + ("-" if tag.endswith("+") else "+")


def context_conflicts(required: list[str], context: frozenset[str]) -> list[str]:
    """Required tags the patient's context contradicts (``HER2+`` required, ``HER2-`` known).

    ``HR+`` (hormone-receptor positive) means ER+ and/or PR+, so it is contradicted only by
    ``HR-`` or by both ``ER-`` and ``PR-``.
    """
    conflicts = []
    for tag in required:
        if tag == "HR+":
            if "HR-" in context or {"ER-", "PR-"} <= context:
                conflicts.append(tag)
        elif _opposite(tag) in context:
            conflicts.append(tag)
    return conflicts


def context_missing(required: list[str], context: frozenset[str]) -> list[str]:
    """Required tags the patient's context does not state."""
    missing = []
    for tag in required:
        if tag == "HR+":
            if not ({"HR+", "ER+", "PR+"} & context):
                missing.append(tag)
        elif tag not in context:
            missing.append(tag)
    return missing


def tumour_relation(
    code: str | None,
    excludes: tuple[str, ...],
    required: tuple[str, ...],
    tumour: TumourType | None,
    context: frozenset[str],
) -> Relation:
    """How a statement's tumour type (``code``, label ``excludes``, ``required`` context tags)
    relates to the patient's tumour type and clinical context (see module docstring)."""
    # A TumourType built without its lineage still stands for its own code.
    lineage = (tumour.lineage or (tumour.code,)) if tumour is not None else ()
    if any(excluded in lineage for excluded in excludes):
        return Relation.EXCLUDED
    if tumour is None or tumour.code == "CANCER":
        return Relation.MATCH if code in PAN_CANCER else Relation.OTHER
    if code is None or code not in lineage:
        return Relation.OTHER
    if context_conflicts(list(required), context):
        return Relation.OTHER
    return Relation.MATCH


def tier_for(level: str, relation: Relation) -> TierAssignment:
    """The tier and level one statement (of source ``level``) supports for this patient."""
    key = (level, relation)
    tier = _TIER_MEMO.get(key)
    if tier is None:
        tier = _TIER_MEMO[key] = _tier_for(level, relation)
    return tier


def _tier_for(level: str, relation: Relation) -> TierAssignment:
    if relation is Relation.MATCH:
        if level == "label":
            return TierAssignment(Tier.I, EvidenceLevel.A)
        if level in _STRONG:
            return TierAssignment(Tier.I, EvidenceLevel.B)
        return TierAssignment(Tier.II, EvidenceLevel.C if level == "C" else EvidenceLevel.D)
    if level in _STRONG:
        return TierAssignment(Tier.II, EvidenceLevel.C)
    return TierAssignment(Tier.III)


def tier_and_rank(level: str, relation: Relation) -> tuple[TierAssignment, tuple[int, int]]:
    """:func:`tier_for` and its :func:`rank` in one memoised lookup (the interpreter's hot path)."""
    key = (level, relation)
    found = _TIER_RANK_MEMO.get(key)
    if found is None:
        tier = tier_for(level, relation)
        found = _TIER_RANK_MEMO[key] = (tier, rank(tier))
    return found


def rank(tier: TierAssignment) -> tuple[int, int]:
    """Sort key: the strongest tier first."""
    return (_TIER_RANK[tier.tier], _LEVEL_RANK[tier.level] if tier.level else 9)


# Pure functions of a handful of values: memoised (a dict write of an equal value is harmless
# under concurrent use).
_TIER_MEMO: dict[tuple[str, Relation], TierAssignment] = {}
_TIER_RANK_MEMO: dict[tuple[str, Relation], tuple[TierAssignment, tuple[int, int]]] = {}


def best(tiers: list[TierAssignment]) -> TierAssignment:
    return min(tiers, key=rank)
