"""``oncology-genomics`` on ``patient-view``: what the patient's genomic results mean, cited.

Cards, most important first: current medications the results contraindicate (critical); one card
per gene with actionable therapy findings (warning for Tier I, info for Tier II); germline
hereditary risk with a genetic-counselling referral suggestion; pharmacogenomic phenotypes that
change prescribing; and one report card linking the report page with a suggestion to save the
Genomics Reporting DiagnosticReport to the chart. No actionable finding: ``{"cards": []}``
(CDS Hooks 2.0 §CDS Service Response), not noise.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Final

from cds_service.cdshooks.registry import ResolvedRequest
from cds_service.cdshooks.schemas import Action, Card, CdsResponse, Link, Suggestion
from cds_service.cdshooks.services import genomic_common as common
from inference.genomics.model import (
    HereditaryRiskFinding,
    Interpretation,
    PharmacogenomicFinding,
    Response,
    TherapeuticFinding,
    Tier,
)

ID = "oncology-genomics"
HOOK = "patient-view"
TITLE = "Precision oncology: genomic results"
DESCRIPTION = (
    "Interprets the patient's genomic variant and pharmacogene genotype Observations against an "
    "evidence-cited knowledge base (CIViC, FDA labels, CPIC, ACMG SF): AMP/ASCO/CAP tiers, "
    "targeted "
    "therapies and resistance for the patient's tumour type, hereditary cancer risk, and "
    "pharmacogenomic risks of current medications."
)
_PATIENT = "{{context.patientId}}"
PREFETCH: Final = {
    "patient": f"Patient/{_PATIENT}",
    "conditions": f"Condition?patient={_PATIENT}&clinical-status=active",
    "variants": (
        f"Observation?patient={_PATIENT}&category=laboratory&code=http://loinc.org|69548-6"
    ),
    "panels": f"Observation?patient={_PATIENT}&code=http://loinc.org|81247-9",
    "genotypes": f"Observation?patient={_PATIENT}&code=http://loinc.org|84413-4",
    "medications": f"MedicationRequest?patient={_PATIENT}&status=active",
}
REQUIRED_PREFETCH: Final = frozenset({"conditions", "variants", "medications"})
USAGE_REQUIREMENTS = (
    "Needs the patient's variant Observations (Genomics Reporting Variant, LOINC 69548-6; older "
    "81247-9 panels are read too), active Conditions (for the tumour type) and active "
    "MedicationRequests, by prefetch or FHIR access; answers 412 when they cannot be had. "
    "Genotype Observations (84413-4) enable pharmacogenomic cards."
)

OBSERVATION_KEYS: Final = ("variants", "panels", "genotypes")
CONTEXT_KEYS: Final = ("patient", "conditions", "medications")


def _resistance_card(interpretation: Interpretation, finding: TherapeuticFinding) -> Card:
    label = common.label_of(interpretation, finding.alteration_id)
    drugs = common.drugs_text(finding)
    detail = (
        f"**{label}** predicts **resistance** to **{drugs}** "
        f"({finding.tier.label}; {finding.disease}), which the patient is currently prescribed.\n\n"
        f"Evidence: {common.citations(finding.evidence)}\n\n{common.NOT_A_DIAGNOSIS}"
    )
    return Card(
        summary=common.summary(f"{label} predicts resistance to current {drugs}"),
        detail=detail,
        indicator="critical",
        source=common.source("resistance-current-medication", "Resistance to a current medication"),
        override_reasons=list(common.OVERRIDE_REASONS),
    )


def _pgx_is_actionable(finding: PharmacogenomicFinding) -> bool:
    return "normal" not in finding.phenotype.lower()


def _pgx_card(finding: PharmacogenomicFinding, *, current: bool) -> Card:
    drugs = ", ".join(d.name for d in finding.drugs)
    lead = "Current medication affected: " if current else ""
    detail = (
        f"**{finding.gene.symbol} {finding.diplotype}**: {finding.phenotype}"
        + (
            f" (activity score {finding.activity_score:g})"
            if finding.activity_score is not None
            else ""
        )
        + f".\n\n**{drugs}**: {finding.recommendation}\n\n"
        f"Evidence: {common.citations(finding.evidence)}\n\n{common.NOT_A_DIAGNOSIS}"
    )
    return Card(
        summary=common.summary(f"{lead}{finding.gene.symbol} {finding.phenotype}: {drugs}"),
        detail=detail,
        indicator="critical" if current else "warning",
        source=common.source("pharmacogenomic-risk", "Pharmacogenomic risk"),
        override_reasons=list(common.OVERRIDE_REASONS),
    )


def _gene_of(interpretation: Interpretation, alteration_id: str) -> str:
    alteration = common.alterations_by_id(interpretation).get(alteration_id)
    if alteration is not None and alteration.gene is not None:
        return alteration.gene.symbol
    return common.label_of(interpretation, alteration_id)


def _therapy_cards(interpretation: Interpretation) -> list[Card]:
    by_gene: dict[str, list[TherapeuticFinding]] = defaultdict(list)
    for finding in interpretation.therapeutic:
        if finding.tier.tier in (Tier.I, Tier.II):
            by_gene[_gene_of(interpretation, finding.alteration_id)].append(finding)
    cards: list[tuple[int, str, Card]] = []
    for gene, findings in by_gene.items():
        sensitive = [f for f in findings if f.response is Response.SENSITIVE]
        if not sensitive:
            continue  # resistance alone is listed with the therapies it concerns, not alone
        best = sensitive[0]  # findings arrive tier-ordered, FDA-approved first
        label = common.label_of(interpretation, best.alteration_id)
        drugs = "; ".join(dict.fromkeys(common.drugs_text(f) for f in sensitive[:3]))
        rows = ["| Tier | Therapy | Response | Disease | Evidence |", "|---|---|---|---|---|"]
        for f in findings[:12]:
            approved = " (FDA-approved for this tumour type)" if f.fda_approved_for_tumour else ""
            rows.append(
                f"| {f.tier.label} | {common.drugs_text(f)}{approved} | {f.response.value} | "
                f"{f.disease} | {common.citations(f.evidence, limit=3)} |"
            )
        notes = [f"- {f.context_note}" for f in findings[:12] if f.context_note]
        detail = "\n".join(
            [
                f"**{label}** ({best.tier.label}) in this patient's tumour type:",
                "",
                *rows,
                *(["", *dict.fromkeys(notes)] if notes else []),
                "",
                common.NOT_A_DIAGNOSIS,
            ]
        )
        card = Card(
            summary=common.summary(f"{label} ({best.tier.label}): {drugs}"),
            detail=detail,
            indicator="warning" if best.tier.tier is Tier.I else "info",
            source=common.source("actionable-finding", "Actionable genomic finding"),
            override_reasons=list(common.OVERRIDE_REASONS),
        )
        order = 0 if best.tier.tier is Tier.I else 1
        cards.append((order, gene, card))
    return [card for _, _, card in sorted(cards, key=lambda item: (item[0], item[1]))]


def _hereditary_card(
    interpretation: Interpretation, finding: HereditaryRiskFinding, patient_ref: str | None
) -> Card:
    label = common.label_of(interpretation, finding.alteration_id)
    referral = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {
            "text": f"Genetic counselling referral ({finding.gene.symbol}: {finding.condition})"
        },
        "reasonCode": [{"text": f"Germline {label}: {finding.classification}"}],
    }
    if patient_ref:
        referral["subject"] = {"reference": patient_ref}
    return Card(
        summary=common.summary(
            f"Germline {label} ({finding.classification}): hereditary {finding.condition} risk"
        ),
        detail=(
            f"Germline **{label}** in **{finding.gene.symbol}** ({finding.classification}): "
            f"{finding.condition}.\n\n{finding.recommendation}\n\n"
            f"Evidence: {common.citations(finding.evidence)}\n\n{common.NOT_A_DIAGNOSIS}"
        ),
        indicator="warning",
        source=common.source("hereditary-risk", "Hereditary cancer risk"),
        suggestions=[
            Suggestion(
                label="Refer for genetic counselling",
                is_recommended=True,
                actions=[
                    Action(
                        type="create",
                        description="Create a genetic-counselling referral (draft ServiceRequest)",
                        resource=referral,
                    )
                ],
            )
        ],
        selection_behavior="at-most-one",
        override_reasons=list(common.OVERRIDE_REASONS),
    )


def _report_card(
    request: ResolvedRequest, genomics: common.PatientGenomics, patient_ref: str, actionable: int
) -> Card | None:
    interpretation = genomics.interpretation
    if request.environment is None:
        return None  # no storage (a bare test registry): no report page to link
    saved = request.environment.save_analysis(
        interpretation,
        patient_ref,
        agent=request.client.iss,
        hook_instance=request.hook_instance,
        request_id=request.request_id,
        call_audit=request.audit,
        fingerprint=genomics.fingerprint,
    )
    request.audit.link("Analysis", saved.id, role="report")
    tier_one = sum(1 for f in interpretation.therapeutic if f.tier.tier is Tier.I)
    return Card(
        summary=common.summary(
            f"Genomic report: {actionable} actionable finding(s), "
            f"{tier_one} Tier I therapy option(s)"
        ),
        detail=(
            "The full report lists every variant with its tier, allele frequency and evidence. "
            "Saving it creates a Genomics Reporting DiagnosticReport (LOINC 51969-4) in the chart."
            f"\n\n{common.NOT_A_DIAGNOSIS}"
        ),
        indicator="info",
        source=common.source("genomic-report", "Genomic report"),
        suggestions=[
            Suggestion(
                label="Save genomic report to chart",
                actions=[
                    Action(
                        type="create",
                        description="Create the Genomics Reporting DiagnosticReport",
                        resource=saved.report_resource,
                    )
                ],
            )
        ],
        selection_behavior="at-most-one",
        links=[Link(label="Open the genomic report", url=saved.report_url, type="absolute")],
    )


def handle(request: ResolvedRequest) -> CdsResponse:
    genomics = common.interpret_prefetch(
        request, observation_keys=OBSERVATION_KEYS, context_keys=CONTEXT_KEYS
    )
    interpretation = genomics.interpretation
    current = genomics.context.context.medications
    cards: list[Card] = []
    for finding in interpretation.therapeutic:
        if finding.response is Response.RESISTANT and finding.current_medication:
            cards.append(_resistance_card(interpretation, finding))
    pgx_other: list[Card] = []
    for pgx in interpretation.pharmacogenomic:
        if not _pgx_is_actionable(pgx):
            continue
        on_it = any(common.medication_matches(m, pgx.drugs) for m in current)
        (cards if on_it else pgx_other).append(_pgx_card(pgx, current=on_it))
    cards.extend(_therapy_cards(interpretation))
    patient_ref = f"Patient/{request.patient_id}" if request.patient_id else None
    cards.extend(
        _hereditary_card(interpretation, h, patient_ref) for h in interpretation.hereditary
    )
    cards.extend(pgx_other)
    unreadable = common.unreadable_card(genomics)
    if not cards:
        return CdsResponse(cards=[unreadable] if unreadable else [])
    if patient_ref is not None:
        report = _report_card(request, genomics, patient_ref, len(cards))
        if report is not None:
            cards.append(report)
    return CdsResponse(cards=cards)
