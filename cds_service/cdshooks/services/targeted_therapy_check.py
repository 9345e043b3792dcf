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
from inference.genomics import load_knowledge_base
from inference.genomics.kb import KnowledgeBase
from inference.genomics.model import (
    Interpretation,
    Medication,
    PatientContext,
    Response,
    TherapeuticFinding,
    Tier,
)
from integrations.fhir.clinical_context import iter_resources, medication_from_request

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
        medication = medication_from_request({**resource, "status": "draft"})
        if medication is not None:
            orders.append((rid, medication))
    return orders


def _findings_for(
    interpretation: Interpretation, drug: Medication, response: Response
) -> list[TherapeuticFinding]:
    return [
        f
        for f in interpretation.therapeutic
        if f.response is response and common.medication_matches(drug, f.drugs)
    ]


def _new_order(drug: Medication, patient_ref: str | None) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": drug.name}
    if drug.rxnorm:
        concept["coding"] = [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": drug.rxnorm,
                "display": drug.name,
            }
        ]
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": concept,
    }
    if patient_ref:
        order["subject"] = {"reference": patient_ref}
    return order


def _resistance_card(
    interpretation: Interpretation,
    drug: Medication,
    order_id: str | None,
    resistant: list[TherapeuticFinding],
    patient_ref: str | None,
) -> Card:
    first = resistant[0]
    label = common.label_of(interpretation, first.alteration_id)
    alternatives = [
        f
        for f in interpretation.therapeutic
        if f.response is Response.SENSITIVE
        and f.tier.tier in (Tier.I, Tier.II)
        and not common.medication_matches(drug, f.drugs)
    ][:MAX_ALTERNATIVES]
    suggestions: list[Suggestion] = []
    for alternative in alternatives:
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
                resource=_new_order(d, patient_ref),
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
        f"- {common.drugs_text(a)} ({a.tier.label}; {a.disease}): "
        f"{common.citations(a.evidence, limit=2)}"
        for a in alternatives
    )
    detail = (
        f"**{label}** predicts **resistance** to **{drug.name}** ({first.tier.label}; "
        f"{first.disease}).\n\nEvidence: {common.citations(first.evidence)}\n\n"
        + (f"Supported alternatives for this patient:\n{alt_lines}\n\n" if alt_lines else "")
        + common.NOT_A_DIAGNOSIS
    )
    return Card(
        summary=common.summary(f"{label} predicts resistance to {drug.name}"),
        detail=detail,
        indicator="critical",
        source=common.source("resistance", "Resistance to the ordered drug"),
        suggestions=suggestions or None,
        selection_behavior="at-most-one" if suggestions else None,
        override_reasons=list(common.OVERRIDE_REASONS),
    )


def _pgx_cards(
    interpretation: Interpretation, drug: Medication, order_id: str | None
) -> list[Card]:
    cards: list[Card] = []
    for finding in interpretation.pharmacogenomic:
        if not common.medication_matches(drug, finding.drugs):
            continue
        if "normal" in finding.phenotype.lower():
            continue
        avoid = finding.recommendation.lower().startswith("avoid")
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
            if avoid and order_id
            else None
        )
        score = (
            f", activity score {finding.activity_score:g}"
            if finding.activity_score is not None
            else ""
        )
        cards.append(
            Card(
                summary=common.summary(
                    f"{finding.gene.symbol} {finding.diplotype} ({finding.phenotype}): "
                    f"{drug.name} dosing risk"
                ),
                detail=(
                    f"**{finding.gene.symbol} {finding.diplotype}**: "
                    f"{finding.phenotype}{score}.\n\n"
                    f"**CPIC recommendation for {drug.name}:** {finding.recommendation}\n\n"
                    f"Evidence: {common.citations(finding.evidence)}\n\n{common.NOT_A_DIAGNOSIS}"
                ),
                indicator="critical",
                source=common.source("pharmacogenomic-risk", "Pharmacogenomic risk"),
                suggestions=suggestions,
                selection_behavior="at-most-one" if suggestions else None,
                override_reasons=list(common.OVERRIDE_REASONS),
            )
        )
    return cards


def _genes_of_matchers(matchers: list[str]) -> set[str]:
    genes: set[str] = set()
    for matcher in matchers:
        parts = matcher.split("|")
        if parts[0] in {"MSI", "TMB"}:
            genes.add(parts[0])
        elif len(parts) >= 2:
            genes.add(parts[1].upper())
    return genes


def _required_tests(
    kb: KnowledgeBase, drug: Medication, context: PatientContext
) -> dict[str, dict[str, Any]]:
    """Genes whose result an FDA indication or resistance rule for this tumour type depends on.

    Only tumour-specific statements count (tumour-agnostic approvals say nothing about what the
    drug needs in its other, biomarker-free indications) and, for sensitivity, only single-agent
    approvals (a combination partner such as cetuximab needs no test of its own from them).
    """
    lineage = set(context.tumour_type.lineage) if context.tumour_type else set()
    required: dict[str, dict[str, Any]] = {}
    for statement in kb.statements:
        if statement.get("source") not in {"FDA", "curated"} or statement.get("tumour_agnostic"):
            continue
        if statement.get("tumour") not in lineage:
            continue
        drugs = [d.lower() for d in statement.get("drugs", [])]
        if drug.name.lower() not in drugs:
            continue
        if statement.get("response") == "sensitive" and len(drugs) != 1:
            continue
        for gene in _genes_of_matchers(statement.get("matchers", [])):
            required.setdefault(gene, statement)
    return required


def _missing_test_card(
    drug: Medication, genes: list[str], statement: dict[str, Any], patient_ref: str | None, why: str
) -> Card:
    test = "/".join(genes)
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {"text": f"{test} testing"},
        "reasonCode": [{"text": f"Required before {drug.name}: {why}"}],
    }
    if patient_ref:
        request["subject"] = {"reference": patient_ref}
    cite = f"[{statement.get('label') or statement.get('id')}]({statement.get('url')})"
    return Card(
        summary=common.summary(f"No {test} result on file; {drug.name} depends on it"),
        detail=(
            f"**{drug.name}** for this patient depends on {test} status ({why}). No {test} result "
            f"is on file.\n\nSource: {cite}\n\n{common.NOT_A_DIAGNOSIS}"
        ),
        indicator="warning",
        source=common.source("missing-biomarker-test", "Missing required biomarker test"),
        suggestions=[
            Suggestion(
                label=f"Order {test} testing",
                is_recommended=True,
                actions=[
                    Action(
                        type="create", description=f"Draft a {test} test order", resource=request
                    )
                ],
            )
        ],
        selection_behavior="at-most-one",
        override_reasons=list(common.OVERRIDE_REASONS),
    )


def _supported_card(
    interpretation: Interpretation, drug: Medication, findings: list[TherapeuticFinding]
) -> Card:
    best = findings[0]
    label = common.label_of(interpretation, best.alteration_id)
    approved = " FDA-approved for this tumour type." if best.fda_approved_for_tumour else ""
    note = f"\n\n{best.context_note}" if best.context_note else ""
    return Card(
        summary=common.summary(f"{drug.name} is supported by {label} ({best.tier.label})"),
        detail=(
            f"**{label}** supports **{common.drugs_text(best)}** ({best.tier.label}; "
            f"{best.disease}).{approved}{note}\n\nEvidence: {common.citations(best.evidence)}\n\n"
            f"{common.NOT_A_DIAGNOSIS}"
        ),
        indicator="info",
        source=common.source("supported-biomarker", "Biomarker-supported therapy"),
    )


def handle(request: ResolvedRequest) -> CdsResponse:
    orders = _draft_orders(request)
    if not orders:
        return CdsResponse(cards=[])
    genomics = common.interpret_prefetch(
        request,
        observation_keys=OBSERVATION_KEYS,
        context_keys=CONTEXT_KEYS,
        extra_medications=tuple(m for _, m in orders),
    )
    interpretation = genomics.interpretation
    kb = load_knowledge_base()
    patient_ref = f"Patient/{request.patient_id}" if request.patient_id else None
    critical: list[Card] = []
    warnings: list[Card] = []
    infos: list[Card] = []
    for order_id, drug in orders:
        resistant = _findings_for(interpretation, drug, Response.RESISTANT)
        if resistant:
            critical.append(
                _resistance_card(interpretation, drug, order_id, resistant, patient_ref)
            )
        critical.extend(_pgx_cards(interpretation, drug, order_id))
        sensitive = [
            f
            for f in _findings_for(interpretation, drug, Response.SENSITIVE)
            if f.tier.tier in (Tier.I, Tier.II)
        ]
        if sensitive and not resistant:
            infos.append(_supported_card(interpretation, drug, sensitive))
        if not sensitive and not resistant:
            required = _required_tests(kb, drug, genomics.context.context)
            missing = sorted(g for g in required if g not in genomics.genes_studied)
            if missing and len(missing) == len(required):
                statement = required[missing[0]]
                warnings.append(
                    _missing_test_card(
                        drug, missing, statement, patient_ref, "FDA label for this tumour type"
                    )
                )
        for gene, table in kb.pharmacogenomics.items():
            if (
                drug.name.lower() in [d.lower() for d in table.get("drugs", [])]
                and gene not in genomics.genes_studied
            ):
                source = table.get("source", {})
                warnings.append(
                    _missing_test_card(
                        drug,
                        [gene],
                        {"label": source.get("id"), "url": source.get("url")},
                        patient_ref,
                        f"CPIC dosing by {gene} genotype",
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
