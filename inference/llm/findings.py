"""The model's input: structured findings only, never a name, identifier or date of the patient.

:func:`genomic_input` reads an :class:`~inference.genomics.model.Interpretation` (the stored
analysis) and :func:`histopathology_input` an :class:`~inference.imaging.results.ImageAnalysis`.
Both return an :class:`ExplanationInput`: a small JSON document (what the model sees), its hash
(part of the cache key) and the ids of the findings the model must write a paragraph for.

What is left out on purpose: the patient reference, source references (``file.vcf:123``,
``Observation/…``), genomic positions, evidence URLs and ids, dates, the analysis id, and the
image's model hashes. What goes in is bounded (findings, therapies, drugs per therapy) so the
prompt fits ``num_ctx`` whatever the analysis holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from inference.genomics.model import (
    Alteration,
    Interpretation,
    Response,
    TherapeuticFinding,
    Tier,
    Variant,
)
from inference.imaging.results import ImageAnalysis

Kind = Literal["genomic", "histopathology"]
MAX_FINDINGS: Final = 8
MAX_THERAPIES: Final = 4
MAX_DRUGS: Final = 4
_ACTIONABLE_TIERS: Final = frozenset({Tier.I, Tier.II})
_TEXT: Final = 300  # longest text copied from the knowledge base into the input


@dataclass(frozen=True, slots=True)
class ExplanationInput:
    """What one explanation is generated from.

    Attributes:
        kind: ``genomic`` or ``histopathology``.
        document: the JSON the model is given (and the grounding checker compares with).
        finding_ids: the findings that get a patient-facing paragraph (genomic only).
    """

    kind: Kind
    document: dict[str, Any]
    finding_ids: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The document as the model sees it (canonical JSON: sorted keys, no spaces)."""
        return json.dumps(self.document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def input_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def _clip(text: str | None, limit: int = _TEXT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _gene(alteration: Alteration | None) -> str:
    gene = getattr(alteration, "gene", None)
    return gene.symbol if gene is not None else "not stated"


def _therapy(finding: TherapeuticFinding) -> dict[str, Any]:
    return {
        "drugs": [d.name for d in finding.drugs[:MAX_DRUGS]],
        "response": finding.response.value,
        "tier": finding.tier.label,
        "regulatory_status": finding.regulatory_status.display,
        "evidence_disease": _clip(finding.disease, 120),
    }


def _actionable(finding: TherapeuticFinding) -> bool:
    return not finding.preclinical and finding.tier.tier in _ACTIONABLE_TIERS


def genomic_input(interpretation: Interpretation) -> ExplanationInput:
    """The input of a genomic explanation: actionable therapy findings (Tier I/II, per
    alteration), hereditary and pharmacogenomic findings, and how many alterations were
    unknown to the knowledge base."""
    alterations = {a.id: a for a in interpretation.alterations}
    by_alteration: dict[str, list[TherapeuticFinding]] = {}
    for finding in interpretation.therapeutic:
        if _actionable(finding):
            by_alteration.setdefault(finding.alteration_id, []).append(finding)
    findings: list[dict[str, Any]] = []
    for alteration_id, rows in by_alteration.items():
        alteration = alterations.get(alteration_id)
        best = min(
            rows,
            key=lambda f: (list(Tier).index(f.tier.tier), f.response is not Response.SENSITIVE),
        )
        item: dict[str, Any] = {
            "category": "therapeutic",
            "gene": _gene(alteration),
            "alteration": alteration.label if alteration else "not stated",
            "tier": best.tier.label,
            "therapies": [_therapy(f) for f in rows[:MAX_THERAPIES]],
        }
        if isinstance(alteration, Variant) and alteration.allele_frequency is not None:
            item["variant_allele_fraction"] = round(alteration.allele_frequency, 3)
        findings.append(item)
    for hereditary in interpretation.hereditary:
        alteration = alterations.get(hereditary.alteration_id)
        findings.append(
            {
                "category": "hereditary",
                "gene": hereditary.gene.symbol,
                "alteration": alteration.label if alteration else hereditary.gene.symbol,
                "classification": _clip(hereditary.classification, 120),
                "condition": _clip(hereditary.condition),
                "recommendation": _clip(hereditary.recommendation),
            }
        )
    for pgx in interpretation.pharmacogenomic:
        findings.append(
            {
                "category": "pharmacogenomic",
                "gene": pgx.gene.symbol,
                "genotype": pgx.diplotype,
                "phenotype": _clip(pgx.phenotype, 120),
                "drugs": [d.name for d in pgx.drugs[:MAX_DRUGS]],
                "recommendation": _clip(pgx.recommendation),
            }
        )
    shown = findings[:MAX_FINDINGS]
    for number, item in enumerate(shown, start=1):
        item["id"] = f"F{number}"
    tumour = interpretation.context.tumour_type
    document: dict[str, Any] = {
        "kind": "genomic",
        "tumour_type": tumour.name if tumour else "not stated",
        "findings": shown,
        "findings_total": len(findings),
        "alterations_not_in_knowledge_base": len(interpretation.unknown),
    }
    return ExplanationInput("genomic", document, tuple(f"F{n}" for n in range(1, len(shown) + 1)))


def histopathology_input(analysis: ImageAnalysis) -> ExplanationInput:
    """The input of a histopathology explanation: the outcome and its figures, the model's
    name and threshold; never the image's identifiers or the bundle's hashes."""

    def percent(value: float | None) -> float | None:
        return None if value is None else round(100 * value, 1)

    document: dict[str, Any] = {
        "kind": "histopathology",
        "model": f"{analysis.model.name} {analysis.model.version}",
        "outcome": analysis.outcome,
        "positive_area_percent": percent(analysis.positive_fraction),
        "highest_tile_probability_percent": percent(analysis.max_probability),
        "mean_tile_probability_percent": percent(analysis.mean_probability),
        "threshold_percent": percent(analysis.model.threshold),
        "tissue_tiles": analysis.tiles_tissue,
        "tiles_set_aside": analysis.tiles_indeterminate,
        "indeterminate_reasons": [_clip(r, 80) for r in analysis.reasons[:MAX_FINDINGS]],
    }
    return ExplanationInput("histopathology", document)
