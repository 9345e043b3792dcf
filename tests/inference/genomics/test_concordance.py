"""Tier concordance with the CIViC assertions of the vendored snapshot (the open gold standard).

CIViC assertions carry an expert AMP/ASCO/CAP tier. OncoCDS never uses an assertion's tier to
compute its own: tiers come from evidence items and FDA labels (inference.genomics.tiering). Here
each predictive assertion with a tier is replayed as a patient (its alteration, its disease as
the tumour type) and OncoCDS's tier for the assertion's therapy is compared with CIViC's.

Scope: predictive (therapy-sensitivity) assertions, the class that defines tiers in the rule we
implement (PCGR ≥ 2.3); diagnostic and prognostic assertions (34 in the snapshot) are outside
it. The expected tiers are read from the TSV here, not from the compiled KB.
"""

from __future__ import annotations

import csv
import json
import re

from inference.genomics import (
    Alteration,
    BiomarkerKind,
    PatientContext,
    Response,
    interpret,
    resolve_tumour_type,
)
from inference.genomics.kb import DEFAULT_KB_PATH, KnowledgeBase, load_knowledge_base
from tests.inference.genomics.factories import biomarker, variant

ASSERTIONS = DEFAULT_KB_PATH.parent.parent / "sources/civic/01-Aug-2024-AssertionSummaries.tsv"
_TIER = re.compile(r"^Tier (I|II|III|IV)(?: - Level ([ABCD]))?$")


def _alteration(profile: str) -> Alteration:
    gene, name = profile.split(" ", 1)
    name = name.strip()
    if name == "Amplification":
        return biomarker(BiomarkerKind.AMPLIFICATION, gene)
    if name == "Fusion":
        return biomarker(BiomarkerKind.FUSION, gene)
    if "::" in name:
        five, three = name.split("::")
        return biomarker(BiomarkerKind.FUSION, gene, partner=five if three == gene else three)
    if re.fullmatch(r"[A-Z]\d+", name):
        # A codon-level assertion (FLT3 D835): a patient carries one concrete change there.
        return variant(gene, protein=f"{name}Y")
    return variant(gene, protein=name)


def _context(row: dict[str, str]) -> PatientContext:
    doid, disease = row["doid"], row["disease"]
    tumour = resolve_tumour_type(f"doid|{doid}" if doid else disease)
    tags = frozenset({"HER2+"}) if disease.startswith("Her2-receptor Positive") else frozenset()
    return PatientContext(tumour_type=tumour, clinical_context=tags)


def _concordance(kb: KnowledgeBase) -> tuple[int, int, int, list[str]]:
    with ASSERTIONS.open(encoding="utf-8", newline="") as handle:
        rows = [
            r
            for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            if r["assertion_type"] == "Predictive"
            and r["amp_category"]
            and r["significance"] == "Sensitivity/Response"
        ]
    assert len(rows) == 20
    tier_agree = level_agree = 0
    disagreements = []
    for row in rows:
        match = _TIER.match(row["amp_category"])
        assert match is not None, row["amp_category"]
        expected = (match.group(1), match.group(2))
        drugs = tuple(sorted(d.strip().lower() for d in row["therapies"].split(",")))
        result = interpret([_alteration(row["molecular_profile"])], _context(row), kb=kb)
        found = [
            f
            for f in result.therapeutic
            if f.response is Response.SENSITIVE and tuple(d.name for d in f.drugs) == drugs
        ]
        got = (
            (found[0].tier.tier.value, found[0].tier.level.value if found[0].tier.level else None)
            if found
            else ("none", None)
        )
        tier_agree += got[0] == expected[0]
        level_agree += got == expected
        if got != expected:
            disagreements.append(f"AID{row['assertion_id']} {row['molecular_profile']}: {got}")
    return tier_agree, level_agree, len(rows), disagreements


def test_tier_concordance_with_civic_predictive_assertions() -> None:
    tier_agree, level_agree, n, disagreements = _concordance(load_knowledge_base())
    print(
        f"\nCIViC predictive-assertion concordance: tier {tier_agree}/{n} "
        f"({100 * tier_agree / n:.1f} %), tier+level {level_agree}/{n} "
        f"({100 * level_agree / n:.1f} %); disagreements: {disagreements or 'none'}"
    )
    assert tier_agree / n >= 0.95, disagreements


def test_concordance_without_fda_labels_shows_what_the_labels_add() -> None:
    """CIViC evidence alone (FDA label statements removed): the labels lift level B to A."""
    data = json.loads(DEFAULT_KB_PATH.read_text(encoding="utf-8"))
    data["statements"] = [s for s in data["statements"] if s["source"] != "FDA"]
    tier_agree, level_agree, n, disagreements = _concordance(KnowledgeBase(data))
    print(
        f"\nwithout FDA label statements: tier {tier_agree}/{n}, tier+level {level_agree}/{n}; "
        f"disagreements: {disagreements}"
    )
    # Levels must now differ somewhere: the label layer is what makes a Tier I level A.
    assert level_agree < n
