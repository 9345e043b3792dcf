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
from inference.genomics import queries
from inference.genomics.model import (
    HereditaryRiskFinding,
    Interpretation,
    Response,
    TherapeuticFinding,
    Tier,
)
from integrations.fhir.orders import counselling_referral

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


#: Therapy rows a gene's card shows; the rest are behind the report link (issue 12).
CARD_ROWS: Final = 5
#: Resistance rows that lead a card, after the FDA-approved options.
LEAD_RESISTANCE: Final = 2


#: Resolved conflicts a card states (clinical-level evidence first); the rest are in the report.
CARD_CONFLICTS: Final = 2


def _conflict_lines(findings: list[TherapeuticFinding]) -> list[str]:
    conflicts = [c for f in findings for c in f.conflicts]
    # Conflicts whose outweighed evidence is preclinical only (CIViC level D) come last.
    conflicts.sort(key=lambda c: all(e.level == "D" for e in c.evidence if e.source == "CIViC"))
    lines = []
    for conflict in conflicts[:CARD_CONFLICTS]:
        regimen = common.md(" + ".join(d.name for d in conflict.drugs))
        lines.append(
            f"- Conflicting evidence for {regimen} resolved: {common.md(conflict.resolution)}. "
            f"{common.citations(conflict.evidence, limit=2)}"
        )
    if len(conflicts) > CARD_CONFLICTS:
        lines.append(
            f"- {len(conflicts) - CARD_CONFLICTS} more resolved conflict(s) in the report."
        )
    return lines


def _resistance_card(interpretation: Interpretation, finding: TherapeuticFinding) -> Card:
    label = common.label_of(interpretation, finding.alteration_id)
    drugs = common.drugs_text(finding)
    taken = "which the patient is currently prescribed" + (
        " (every drug of the regimen)" if len(finding.drugs) > 1 else ""
    )
    detail = (
        f"**{common.md(label)}** predicts **resistance** to **{common.drugs_md(finding)}** "
        f"({finding.tier.label}; {common.md(finding.disease)}), {taken}.\n\n"
        f"Evidence: {common.citations(finding.evidence)}\n\n{common.NOT_A_DIAGNOSIS}"
    )
    return common.clinical_card(
        summary=common.summary(f"{label} predicts resistance to current {drugs}"),
        detail=detail,
        indicator="critical",
        source=common.source("resistance-current-medication", "Resistance to a current medication"),
    )


def _pgx_card(action: queries.PharmacogenomicAction) -> Card:
    finding = action.finding
    current = action.current
    drugs = ", ".join(d.name for d in finding.drugs)
    lead = "Current medication affected: " if current else ""
    phenotype = common.phenotype_text(finding)
    detail = (
        f"**{common.md(finding.gene.symbol)} {common.md(finding.diplotype)}**: "
        f"{common.md(finding.phenotype)}"
        + (
            f" (activity score {finding.activity_score:g})"
            if finding.activity_score is not None
            else ""
        )
        + f".\n\n**{common.md(drugs)}**: {common.md(finding.recommendation)}\n\n"
        f"Evidence: {common.citations(finding.evidence)}\n\n{common.NOT_A_DIAGNOSIS}"
    )
    return common.clinical_card(
        summary=common.summary(f"{lead}{finding.gene.symbol} {phenotype}: {drugs}"),
        detail=detail,
        indicator="critical" if current else "warning",
        source=common.source("pharmacogenomic-risk", "Pharmacogenomic risk"),
    )


def _gene_of(interpretation: Interpretation, alteration_id: str) -> str:
    alteration = common.alterations_by_id(interpretation).get(alteration_id)
    if alteration is not None and alteration.gene is not None:
        return alteration.gene.symbol
    return common.label_of(interpretation, alteration_id)


def card_rows(findings: list[TherapeuticFinding]) -> list[TherapeuticFinding]:
    """The rows a gene's card shows, at most :data:`CARD_ROWS`: the FDA-approved options for
    this tumour type, then the decisive resistance (Tier I; label or guideline rules and the
    patient's medications first), then the other offered options, then other resistance.
    Preclinical-only rows, withdrawn drugs and research compounds are never offered."""
    offered = [f for f in findings if queries.is_actionable(f)]
    approved = [
        f
        for f in offered
        if f.response is Response.SENSITIVE and f.regulatory_status.for_this_tumour
    ]
    resistance = sorted(
        (f for f in offered if f.response is Response.RESISTANT and f.tier.tier is Tier.I),
        key=lambda f: (
            not f.current_medication,
            not any(e.source in {"FDA", "curated"} for e in f.evidence),
            len(f.drugs) != 1,
        ),
    )
    others = [f for f in offered if f.response is Response.SENSITIVE and f not in approved]
    rest = [f for f in offered if f.response is Response.RESISTANT and f not in resistance]
    ordered = [
        *approved,
        *resistance[:LEAD_RESISTANCE],
        *others,
        *resistance[LEAD_RESISTANCE:],
        *rest,
    ]
    return ordered[:CARD_ROWS]


def _therapy_cards(interpretation: Interpretation) -> list[tuple[Card, int]]:
    """One card per gene with an offered therapy, and how many of its rows the card leaves to
    the report."""
    by_gene: dict[str, list[TherapeuticFinding]] = defaultdict(list)
    for finding in interpretation.therapeutic:
        by_gene[_gene_of(interpretation, finding.alteration_id)].append(finding)
    cards: list[tuple[int, str, Card, int]] = []
    for gene, findings in by_gene.items():
        rows = card_rows(findings)
        sensitive = [f for f in rows if f.response is Response.SENSITIVE]
        if not sensitive:
            continue  # resistance alone is listed with the therapies it concerns, not alone
        best = sensitive[0]
        label = common.label_of(interpretation, best.alteration_id)
        # The summary names only options at the tier it states (a Tier II row is not "Tier I").
        at_best = [f for f in sensitive if f.tier == best.tier]
        drugs = "; ".join(dict.fromkeys(common.drugs_text(f) for f in at_best[:3]))
        table = [
            "| Therapy | Response | Tier | Regulatory status | Disease | Evidence |",
            "|---|---|---|---|---|---|",
        ]
        for f in rows:
            table.append(
                f"| {common.drugs_md(f)} | {f.response.value} | {f.tier.label} | "
                f"{f.regulatory_status.display} | {common.md(f.disease)} | "
                f"{common.citations(f.evidence, limit=3)} |"
            )
        notes = [f"- {common.md(f.context_note)}" for f in rows if f.context_note]
        conflicts = _conflict_lines(rows)
        more = len(findings) - len(rows)
        detail = "\n".join(
            [
                f"**{common.md(label)}** ({best.tier.label}) in this patient's tumour type:",
                "",
                *table,
                *(["", *dict.fromkeys(notes)] if notes else []),
                *(["", *conflicts] if conflicts else []),
                *(["", f"{more} more in the report."] if more > 0 else []),
                "",
                common.NOT_A_DIAGNOSIS,
            ]
        )
        card = common.clinical_card(
            summary=common.summary(f"{label} ({best.tier.label}): {drugs}"),
            detail=detail,
            indicator="warning" if best.tier.tier is Tier.I else "info",
            source=common.source("actionable-finding", "Actionable genomic finding"),
        )
        order = 0 if best.tier.tier is Tier.I else 1
        cards.append((order, gene, card, more))
    return [(card, more) for _, _, card, more in sorted(cards, key=lambda i: (i[0], i[1]))]


def _hereditary_card(
    interpretation: Interpretation, finding: HereditaryRiskFinding, patient_ref: str | None
) -> Card:
    label = common.label_of(interpretation, finding.alteration_id)
    suggestions = (
        [
            Suggestion(
                label="Refer for genetic counselling",
                is_recommended=True,
                actions=[
                    Action(
                        type="create",
                        description="Create a genetic-counselling referral (draft ServiceRequest)",
                        resource=counselling_referral(
                            finding.gene.symbol,
                            finding.condition,
                            f"Germline {label}: {finding.classification}",
                            patient_ref,
                        ),
                    )
                ],
            )
        ]
        if patient_ref
        else None
    )
    return common.clinical_card(
        summary=common.summary(
            f"Germline {label} ({finding.classification}): hereditary {finding.condition} risk"
        ),
        detail=(
            f"Germline **{common.md(label)}** in **{common.md(finding.gene.symbol)}** "
            f"({common.md(finding.classification)}): {common.md(finding.condition)}.\n\n"
            f"{common.md(finding.recommendation)}\n\n"
            f"Evidence: {common.citations(finding.evidence)}\n\n{common.NOT_A_DIAGNOSIS}"
        ),
        indicator="warning",
        source=common.source("hereditary-risk", "Hereditary cancer risk"),
        suggestions=suggestions,
    )


def report_summary(interpretation: Interpretation) -> str:
    """The report card's count: variants by tier, the same count as the report's chart
    (:func:`inference.genomics.queries.variants_by_tier`)."""
    counts = queries.variants_by_tier(interpretation)
    total = sum(counts.values())
    return (
        f"Genomic report: {total} variant(s): {counts['Tier I']} Tier I, "
        f"{counts['Tier II']} Tier II, {counts['Tier III']} Tier III, "
        f"{counts['Unknown']} not in the knowledge base"
    )


def _report_card(
    request: ResolvedRequest, genomics: common.PatientGenomics, patient_ref: str
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
    return Card(
        summary=common.summary(report_summary(interpretation)),
        detail=(
            "The full report lists every variant with its tier, allele frequency and evidence, "
            "every therapy row (regulatory status, disease, source; preclinical evidence "
            "marked) and how conflicting evidence was resolved. "
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
    for action in queries.pharmacogenomic_actions(interpretation, current):
        (cards if action.current else pgx_other).append(_pgx_card(action))
    therapy = _therapy_cards(interpretation)
    cards.extend(card for card, _ in therapy)
    patient_ref = f"Patient/{request.patient_id}" if request.patient_id else None
    cards.extend(
        _hereditary_card(interpretation, h, patient_ref) for h in interpretation.hereditary
    )
    cards.extend(pgx_other)
    unreadable = common.unreadable_card(genomics)
    if not cards:
        return CdsResponse(cards=[unreadable] if unreadable else [])
    if patient_ref is not None:
        report = _report_card(request, genomics, patient_ref)
        if report is not None:
            # The rows a card leaves out are one click away.
            for card, more in therapy:
                if more > 0 and report.links:
                    url = report.links[0].url
                    card.links = [
                        Link(label=f"{more} more in the report", url=url, type="absolute")
                    ]
            cards.append(report)
    return CdsResponse(cards=cards)
