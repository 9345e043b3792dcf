"""The genomic report's overall conclusion in words: one sentence per finding, findings first.

Prose only from what the interpretation holds (labels, tiers, recommendations from the knowledge
base); nothing is guessed. Used as ``DiagnosticReport.conclusion`` by the FHIR report builder
(``integrations.fhir.genomics_report``) and free for any other rendering.
"""

from __future__ import annotations

from inference.genomics.model import Interpretation


def conclusion_text(interpretation: Interpretation) -> str:
    """The report's overall conclusion: one sentence per finding, findings-first, no guessing."""
    labels = {alt.id: alt.label for alt in interpretation.alterations}
    parts: list[str] = []
    for tx in interpretation.therapeutic:
        drugs = " + ".join(d.name for d in tx.drugs)
        verb = (
            "predicts response to" if tx.response.value == "sensitive" else "predicts resistance to"
        )
        label = labels.get(tx.alteration_id, "an alteration")
        parts.append(f"{label}: {verb} {drugs} in {tx.disease} ({tx.tier.label}).")
    for dx in interpretation.diagnostic:
        parts.append(
            f"{labels.get(dx.alteration_id, 'an alteration')}: {dx.kind} - {dx.statement} "
            f"({dx.tier.label})."
        )
    for hr in interpretation.hereditary:
        parts.append(
            f"Germline {hr.gene.symbol} {hr.classification} variant: {hr.condition}. "
            f"{hr.recommendation}"
        )
    for pgx in interpretation.pharmacogenomic:
        drugs = ", ".join(d.name for d in pgx.drugs)
        parts.append(
            f"{pgx.gene.symbol} {pgx.diplotype} ({pgx.phenotype}): {drugs}: {pgx.recommendation}"
        )
    if not parts:
        parts.append("No actionable finding in the knowledge base.")
    if interpretation.unknown:
        parts.append(
            f"{len(interpretation.unknown)} alteration(s) not in the knowledge base "
            "(significance unknown)."
        )
    parts.append("Decision support, not a diagnosis.")
    return " ".join(parts)
