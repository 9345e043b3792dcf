"""Typed questions the services ask of an interpretation and the knowledge base.

The clinical rules behind cards live here, in the domain, so that a card service only chooses
and lays out cards (issue 13): which drug is the same drug, which tests a drug depends on in a
tumour type, which pharmacogenomic findings call for action, which therapy rows may be offered,
and how many variants each tier holds (one count for the card and the report's chart).

Pure functions of their arguments; nothing here reads raw knowledge-base dicts outside
:func:`required_tests` and :func:`pharmacogenomic_tests`, which own that walk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from inference.genomics.kb.store import KnowledgeBase
from inference.genomics.model import (
    Interpretation,
    Medication,
    PatientContext,
    PharmacogenomicFinding,
    RegulatoryStatus,
    Response,
    TherapeuticFinding,
    Tier,
    TierAssignment,
)
from inference.genomics.tiering import best

#: Tiers whose therapy rows are offered on cards (AMP/ASCO/CAP: strong and potential
#: clinical significance).
ACTIONABLE_TIERS: Final = frozenset({Tier.I, Tier.II})
_NOT_OFFERED: Final = frozenset({RegulatoryStatus.WITHDRAWN, RegulatoryStatus.PRECLINICAL})


# ------------------------------------------------------------------ drugs


def drug_keys(drug: Medication) -> frozenset[str]:
    """What identifies a drug: its lower-case name and its RxNorm code, when coded."""
    name = drug.name.strip().lower()
    return frozenset(k for k in (name, drug.rxnorm) if k)


def same_drug(a: Medication, b: Medication) -> bool:
    """Same drug by RxNorm code or by (case- and space-insensitive) name."""
    return bool(drug_keys(a) & drug_keys(b))


def among(drug: Medication, drugs: Iterable[Medication]) -> bool:
    """``drug`` is one of ``drugs``."""
    return any(same_drug(drug, other) for other in drugs)


def regimen_taken(regimen: Sequence[Medication], medications: Iterable[Medication]) -> bool:
    """Every drug of ``regimen`` is among ``medications`` (a single agent: that drug).

    A regimen's evidence is about the regimen: it concerns a patient's medications only when
    they hold all of it.
    """
    taken = tuple(medications)
    return bool(regimen) and all(among(drug, taken) for drug in regimen)


# ------------------------------------------------------------------ therapy rows


def is_actionable(finding: TherapeuticFinding | PharmacogenomicFinding) -> bool:
    """A finding a card may show.

    Therapy rows: Tier I or II, not preclinical-only, not a withdrawn drug or a research
    compound. Pharmacogenomic findings: any phenotype but a normal one (CPIC: normal
    metabolizers get the label dose; no card).
    """
    if isinstance(finding, PharmacogenomicFinding):
        return "normal" not in finding.phenotype.lower()
    return (
        finding.tier.tier in ACTIONABLE_TIERS
        and not finding.preclinical
        and finding.regulatory_status not in _NOT_OFFERED
    )


def offered_for(interpretation: Interpretation, drug: Medication) -> list[TherapeuticFinding]:
    """Actionable sensitive rows whose regimen includes ``drug``, single agents first."""
    rows = [
        f
        for f in interpretation.therapeutic
        if f.response is Response.SENSITIVE and is_actionable(f) and among(drug, f.drugs)
    ]
    return sorted(rows, key=lambda f: len(f.drugs) != 1)


def resistance_to_orders(
    interpretation: Interpretation, drug: Medication, ordered: Sequence[Medication]
) -> list[TherapeuticFinding]:
    """Resistance rows about ``drug`` that are claims about what is ordered: the row's whole
    regimen is among ``ordered`` (a regimen's evidence is not a claim about one of its drugs).
    Preclinical-only rows are left to the report."""
    return [
        f
        for f in interpretation.therapeutic
        if f.response is Response.RESISTANT
        and not f.preclinical
        and f.tier.tier in ACTIONABLE_TIERS
        and among(drug, f.drugs)
        and regimen_taken(f.drugs, ordered)
    ]


# ------------------------------------------------------------------ tests a drug depends on


@dataclass(frozen=True, slots=True)
class RequiredTest:
    """A gene (or ``MSI``/``TMB``) whose result a drug depends on, and the source saying so."""

    gene: str
    #: The statement's id (an FDA fact, a resistance rule, a CPIC guideline).
    source_id: str
    #: Its display label (the FDA label id, the guideline name).
    label: str
    url: str


def _genes_of_matchers(matchers: Iterable[str]) -> list[str]:
    genes: list[str] = []
    for matcher in matchers:
        parts = matcher.split("|")
        gene = (
            parts[0] if parts[0] in {"MSI", "TMB"} else parts[1].upper() if len(parts) > 1 else ""
        )
        if gene and gene not in genes:
            genes.append(gene)
    return genes


def required_tests(
    kb: KnowledgeBase, drug: Medication, context: PatientContext
) -> dict[str, RequiredTest]:
    """Genes whose result an FDA indication or resistance rule for this tumour type depends on.

    Only tumour-specific statements count (tumour-agnostic approvals say nothing about what the
    drug needs in its other, biomarker-free indications) and, for sensitivity, only single-agent
    approvals (a combination partner such as cetuximab needs no test of its own from them).
    Keyed by gene, in knowledge-base order.
    """
    lineage = set(context.tumour_type.lineage) if context.tumour_type else set()
    wanted = drug.name.strip().lower()
    required: dict[str, RequiredTest] = {}
    for statement in kb.statements:
        if statement.get("source") not in {"FDA", "curated"} or statement.get("tumour_agnostic"):
            continue
        if statement.get("tumour") not in lineage:
            continue
        drugs = [d.lower() for d in statement.get("drugs", [])]
        if wanted not in drugs:
            continue
        if statement.get("response") == "sensitive" and len(drugs) != 1:
            continue
        for gene in _genes_of_matchers(statement.get("matchers", [])):
            required.setdefault(
                gene,
                RequiredTest(
                    gene=gene,
                    source_id=str(statement.get("id")),
                    label=str(
                        statement.get("label_id") or statement.get("label") or statement.get("id")
                    ),
                    url=str(statement.get("url")),
                ),
            )
    return required


def pharmacogenomic_tests(kb: KnowledgeBase, drug: Medication) -> tuple[RequiredTest, ...]:
    """Pharmacogenes with a dosing guideline (CPIC/DPWG) for ``drug``."""
    wanted = drug.name.strip().lower()
    tests = []
    for gene, table in kb.pharmacogenomics.items():
        if wanted in [d.lower() for d in table.get("drugs", [])]:
            source = table.get("source", {})
            tests.append(
                RequiredTest(
                    gene=gene,
                    source_id=str(source.get("id")),
                    label=str(source.get("id")),
                    url=str(source.get("url")),
                )
            )
    return tuple(tests)


# ------------------------------------------------------------------ pharmacogenomics


@dataclass(frozen=True, slots=True)
class PharmacogenomicAction:
    """An actionable pharmacogenomic finding and the given medications it concerns."""

    finding: PharmacogenomicFinding
    #: The medications (of those asked about) the finding's guideline covers.
    affected: tuple[Medication, ...]
    #: The recommendation is to avoid the drug (CPIC "Avoid …").
    avoid: bool

    @property
    def current(self) -> bool:
        return bool(self.affected)


def pharmacogenomic_actions(
    interpretation: Interpretation, medications: Sequence[Medication] = ()
) -> tuple[PharmacogenomicAction, ...]:
    """Each actionable (not normal-metabolizer) pharmacogenomic finding, with the medications
    of ``medications`` it concerns; findings that concern none are kept (``current`` False)."""
    actions = []
    for finding in interpretation.pharmacogenomic:
        if not is_actionable(finding):
            continue
        affected = tuple(m for m in medications if among(m, finding.drugs))
        actions.append(
            PharmacogenomicAction(
                finding=finding,
                affected=affected,
                avoid=finding.recommendation.lower().startswith("avoid"),
            )
        )
    return tuple(actions)


# ------------------------------------------------------------------ counts


#: The labels of :func:`variants_by_tier`, in display order.
TIER_LABELS: Final = ("Tier I", "Tier II", "Tier III", "Tier IV", "Unknown")


def variants_by_tier(interpretation: Interpretation) -> dict[str, int]:
    """How many variants (alterations, each counted once at its tier) each tier holds, and how
    many the knowledge base does not know. Genotypes are not variants and are not counted.

    The one count the report's chart and the report card both show.
    """
    counts = dict.fromkeys(TIER_LABELS, 0)
    tiers = dict(interpretation.alteration_tiers)
    # An interpretation built without alteration tiers (older stored analyses) is counted by
    # the same rule interpret() applies: the best sensitivity row's tier, else Tier III.
    rows: dict[str, list[TierAssignment]] = {}
    for finding in interpretation.therapeutic:
        rows.setdefault(finding.alteration_id, [])
        if finding.response is Response.SENSITIVE:
            rows[finding.alteration_id].append(finding.tier)
    for diagnostic in interpretation.diagnostic:
        rows.setdefault(diagnostic.alteration_id, [])
    for alteration_id, sensitive in rows.items():
        if alteration_id not in tiers:
            tiers[alteration_id] = best(sensitive) if sensitive else TierAssignment(Tier.III)
    for tier in tiers.values():
        counts[f"Tier {tier.tier.value}"] += 1
    counts["Unknown"] = sum(
        1 for u in interpretation.unknown if not u.alteration_id.startswith("genotype:")
    )
    return counts
