"""``targeted-therapy-check`` on ``order-sign`` (and ``targeted-therapy-check-select`` on
``order-select``): each draft MedicationRequest against the patient's variants and tumour type.

Per ordered drug, most important first:
- resistance (critical): the patient's variant predicts no benefit; suggestions replace the order
  with supported alternatives for this patient (CDS Hooks 2.0: a suggestion's actions are one
  unit: delete the draft, create the alternative);
- pharmacogenomic risk (critical): e.g. DPYD poor metabolizer and capecitabine, with the CPIC
  action; "avoid" recommendations suggest removing the draft;
- missing required biomarker test (warning): the drug's FDA indication for this tumour type
  needs a result the patient does not have, or a CPIC pharmacogene was never genotyped; the
  suggestion orders the test;
- supported biomarker (info): the variant that supports the drug, tier and citation.
Every card lists override reasons a clinician can pick.
"""

from __future__ import annotations

from typing import Any, Final

from cds_service.cdshooks.registry import CdsServiceDefinition, ResolvedRequest
from cds_service.cdshooks.schemas import Action, Card, CdsResponse, Suggestion
from cds_service.cdshooks.services import genomic_common as common
from inference.genomics import load_knowledge_base, queries
from inference.genomics.model import (
    Interpretation,
    Medication,
    Response,
    TherapeuticFinding,
)
from integrations.fhir.clinical_context import iter_resources, medication_from_request
from integrations.fhir.orders import biomarker_test_order, medication_proposal

ID = "targeted-therapy-check"
SELECT_ID = "targeted-therapy-check-select"
TITLE = "Targeted therapy check"
DESCRIPTION = (
    "Checks each draft medication order against the patient's genomic variants, tumour type and "
    "pharmacogene genotypes: biomarker support, resistance (with supported alternatives), "
    "pharmacogenomic dosing risk (CPIC) and missing required biomarker tests."
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
}
REQUIRED_PREFETCH: Final = frozenset({"conditions", "variants", "genotypes"})
USAGE_REQUIREMENTS = (
    "Needs the draft MedicationRequests in context, and the patient's variant (69548-6) and "
    "genotype (84413-4) Observations and active Conditions by prefetch or FHIR access; answers "
    "412 when they cannot be had."
)
OBSERVATION_KEYS: Final = ("variants", "panels", "genotypes")
CONTEXT_KEYS: Final = ("patient", "conditions")
MAX_ALTERNATIVES: Final = 3


def _draft_orders(request: ResolvedRequest) -> list[tuple[str | None, Medication]]:
    """(resource id, drug) of each draft MedicationRequest to check (order-select: selections)."""
    selections = request.context.get("selections")
    wanted = (
        set(selections) if request.hook == "order-select" and isinstance(selections, list) else None
    )
    orders: list[tuple[str | None, Medication]] = []
    for resource in iter_resources(request.context.get("draftOrders")):
        if resource.get("resourceType") != "MedicationRequest":
            continue
        rid = resource.get("id") if isinstance(resource.get("id"), str) else None
        if wanted is not None and f"MedicationRequest/{rid}" not in wanted:
            continue
        medication = medication_from_request(resource)
        if medication is not None:
            orders.append((rid, medication))
    return orders


def _alternatives(interpretation: Interpretation, drug: Medication) -> list[TherapeuticFinding]:
    """Offered options without the resisted drug: FDA-approved for this tumour type first."""
    offered = [
        f
        for f in interpretation.therapeutic
        if f.response is Response.SENSITIVE
        and queries.is_actionable(f)
        and not queries.among(drug, f.drugs)
    ]
    offered.sort(key=lambda f: not f.regulatory_status.for_this_tumour)
    unique = {tuple(d.name for d in f.drugs): f for f in reversed(offered)}
    return sorted(unique.values(), key=offered.index)[:MAX_ALTERNATIVES]


def _resistance_card(
    interpretation: Interpretation,
    drug: Medication,
    order_id: str | None,
    resistant: list[TherapeuticFinding],
    patient_ref: str | None,
) -> Card:
    first = resistant[0]
    label = common.label_of(interpretation, first.alteration_id)
    alternatives = _alternatives(interpretation, drug)
    suggestions: list[Suggestion] = []
    for alternative in alternatives if patient_ref else []:
        actions: list[Action] = []
        if order_id:
            actions.append(
                Action(
                    type="delete",
                    description=f"Remove the draft {drug.name} order",
                    resource_id=f"MedicationRequest/{order_id}",
                )
            )
        actions.extend(
            Action(
                type="create",
                description=f"Draft an order for {d.name}",
                resource=medication_proposal(d, patient_ref or ""),
            )
            for d in alternative.drugs
        )
        suggestions.append(
            Suggestion(
                label=common.summary(
                    f"Order {common.drugs_text(alternative)} instead ({alternative.tier.label})"
                ),
                actions=actions,
            )
        )
    alt_lines = "\n".join(
        f"- {common.drugs_md(a)} ({a.tier.label}; {a.regulatory_status.display}; "
        f"{common.md(a.disease)}): {common.citations(a.evidence, limit=2)}"
        for a in alternatives
    )
    regimen = (
        f" (the evidence is about {common.drugs_md(first)}, all of it ordered)"
        if len(first.drugs) > 1
        else ""
    )
    detail = (
        f"**{common.md(label)}** predicts **resistance** to **{common.md(drug.name)}**{regimen} "
        f"({first.tier.label}; {common.md(first.disease)}).\n\n"
        f"Evidence: {common.citations(first.evidence)}\n\n"
        + (f"Supported alternatives for this patient:\n{alt_lines}\n\n" if alt_lines else "")
        + common.NOT_A_DIAGNOSIS
    )
    return common.clinical_card(
        summary=common.summary(f"{label} predicts resistance to {drug.name}"),
        detail=detail,
        indicator="critical",
        source=common.source("resistance", "Resistance to the ordered drug"),
        suggestions=suggestions or None,
    )


def _pgx_card(
    action: queries.PharmacogenomicAction, drug: Medication, order_id: str | None
) -> Card:
    finding = action.finding
    suggestions = (
        [
            Suggestion(
                label=f"Remove the draft {drug.name} order",
                actions=[
                    Action(
                        type="delete",
                        description=f"Remove the draft {drug.name} order",
                        resource_id=f"MedicationRequest/{order_id}",
                    )
                ],
            )
        ]
        if action.avoid and order_id
        else None
    )
    score = (
        f", activity score {finding.activity_score:g}" if finding.activity_score is not None else ""
    )
    return common.clinical_card(
        summary=common.summary(
            f"{finding.gene.symbol} {finding.diplotype} ({common.phenotype_text(finding)}): "
            f"{drug.name} dosing risk"
        ),
        detail=(
            f"**{common.md(finding.gene.symbol)} {common.md(finding.diplotype)}**: "
            f"{common.md(finding.phenotype)}{score}.\n\n"
            f"**{common.md(finding.evidence[0].source if finding.evidence else 'Guideline')} "
            f"recommendation for {common.md(drug.name)}:** {common.md(finding.recommendation)}"
            f"\n\nEvidence: {common.citations(finding.evidence)}\n\n{common.NOT_A_DIAGNOSIS}"
        ),
        indicator="critical",
        source=common.source("pharmacogenomic-risk", "Pharmacogenomic risk"),
        suggestions=suggestions,
    )


def _missing_test_card(
    drug: Medication,
    genes: list[str],
    test: queries.RequiredTest,
    patient_ref: str | None,
    why: str,
) -> Card:
    name = "/".join(genes)
    suggestions = (
        [
            Suggestion(
                label=f"Order {name} testing",
                is_recommended=True,
                actions=[
                    Action(
                        type="create",
                        description=f"Draft a {name} test order",
                        resource=biomarker_test_order(
                            name, f"Required before {drug.name}: {why}", patient_ref
                        ),
                    )
                ],
            )
        ]
        if patient_ref
        else None
    )
    cite = f"[{common.md(test.label)}]({test.url})"
    return common.clinical_card(
        summary=common.summary(f"No {name} result on file; {drug.name} depends on it"),
        detail=(
            f"**{common.md(drug.name)}** for this patient depends on {common.md(name)} status "
            f"({why}). No {common.md(name)} result is on file.\n\nSource: {cite}\n\n"
            f"{common.NOT_A_DIAGNOSIS}"
        ),
        indicator="warning",
        source=common.source("missing-biomarker-test", "Missing required biomarker test"),
        suggestions=suggestions,
    )


def _supported_card(
    interpretation: Interpretation, drug: Medication, findings: list[TherapeuticFinding]
) -> Card:
    best = findings[0]
    label = common.label_of(interpretation, best.alteration_id)
    note = f"\n\n{common.md(best.context_note)}" if best.context_note else ""
    if len(best.drugs) == 1:
        summary = f"{drug.name} is supported by {label} ({best.tier.label})"
        claim = f"**{common.md(label)}** supports **{common.drugs_md(best)}**"
    else:
        # A regimen's evidence is not a claim about one of its drugs: say which regimen.
        summary = (
            f"{label} supports {common.drugs_text(best)} ({best.tier.label}), not {drug.name} alone"
        )
        claim = (
            f"**{common.md(label)}** supports the regimen **{common.drugs_md(best)}**, of which "
            f"{common.md(drug.name)} is one drug; the evidence is not about "
            f"{common.md(drug.name)} alone"
        )
    return Card(
        summary=common.summary(summary),
        detail=(
            f"{claim} ({best.tier.label}; {best.regulatory_status.display}; "
            f"{common.md(best.disease)}).{note}\n\n"
            f"Evidence: {common.citations(best.evidence)}\n\n{common.NOT_A_DIAGNOSIS}"
        ),
        indicator="info",
        source=common.source("supported-biomarker", "Biomarker-supported therapy"),
    )


def handle(request: ResolvedRequest) -> CdsResponse:
    orders = _draft_orders(request)
    if not orders:
        return CdsResponse(cards=[])
    genomics = common.interpret_prefetch(
        request, observation_keys=OBSERVATION_KEYS, context_keys=CONTEXT_KEYS
    )
    interpretation = genomics.interpretation
    kb = load_knowledge_base()
    patient_ref = f"Patient/{request.patient_id}" if request.patient_id else None
    ordered = [m for _, m in orders]
    critical: list[Card] = []
    warnings: list[Card] = []
    infos: list[Card] = []
    for order_id, drug in orders:
        resistant = queries.resistance_to_orders(interpretation, drug, ordered)
        if resistant:
            critical.append(
                _resistance_card(interpretation, drug, order_id, resistant, patient_ref)
            )
        critical.extend(
            _pgx_card(action, drug, order_id)
            for action in queries.pharmacogenomic_actions(interpretation, [drug])
            if action.current
        )
        sensitive = queries.offered_for(interpretation, drug)
        if sensitive and not resistant:
            infos.append(_supported_card(interpretation, drug, sensitive))
        if not sensitive and not resistant:
            required = queries.required_tests(kb, drug, genomics.context.context)
            missing = sorted(g for g in required if g not in genomics.genes_studied)
            if missing and len(missing) == len(required):
                warnings.append(
                    _missing_test_card(
                        drug,
                        missing,
                        required[missing[0]],
                        patient_ref,
                        "FDA label for this tumour type",
                    )
                )
        for test in queries.pharmacogenomic_tests(kb, drug):
            if test.gene not in genomics.genes_studied:
                warnings.append(
                    _missing_test_card(
                        drug,
                        [test.gene],
                        test,
                        patient_ref,
                        f"{test.label.split()[0]} dosing by {test.gene} genotype",
                    )
                )
    unreadable = common.unreadable_card(genomics)
    if unreadable is not None:
        warnings.append(unreadable)
    return CdsResponse(cards=[*critical, *warnings, *infos])


def definitions() -> tuple[CdsServiceDefinition, CdsServiceDefinition]:
    """The same check on ``order-sign`` and on ``order-select`` (two discovery entries)."""
    common_args: dict[str, Any] = {
        "description": DESCRIPTION,
        "handler": handle,
        "prefetch": PREFETCH,
        "required_prefetch": REQUIRED_PREFETCH,
        "usage_requirements": USAGE_REQUIREMENTS,
    }
    return (
        CdsServiceDefinition(id=ID, hook="order-sign", title=TITLE, **common_args),
        CdsServiceDefinition(
            id=SELECT_ID, hook="order-select", title=f"{TITLE} (order select)", **common_args
        ),
    )
