"""What the genomic CDS services share: reading prefetch, interpretation, card building blocks.

Cards follow CDS Hooks 2.0 §Card: one-sentence summaries under 140 characters, detail in GitHub
Flavored Markdown, ``source.topic`` naming the card kind (feedback is summarised per kind), and
every clinical statement followed by its citation (FDA label, CIViC evidence id, CPIC guideline,
PubMed id). Nothing here guesses: an alteration the knowledge base does not know produces no card.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from cds_service.cdshooks.registry import ResolvedRequest
from cds_service.cdshooks.schemas import Card, Coding, OverrideReason, Source, Suggestion
from inference.genomics import Interpretation, interpret, load_knowledge_base
from inference.genomics.model import (
    Alteration,
    Evidence,
    PharmacogenomicFinding,
    TherapeuticFinding,
)
from integrations.errors import IntakeError
from integrations.fhir.clinical_context import (
    ContextResult,
    iter_resources,
    patient_context_from_resources,
)
from integrations.fhir.variant_intake import genes_studied as fhir_genes_studied
from integrations.fhir.variant_intake import read_fhir_variants
from integrations.intake import IntakeResult
from integrations.memo import LruCache, canonical_json

#: Code system of ``source.topic``: the kind of card, for feedback summaries.
CARD_KIND_SYSTEM: Final = "urn:oncocds:card-kind"
LOINC: Final = "http://loinc.org"
SOURCE_LABEL: Final = "OncoCDS precision oncology"
NOT_A_DIAGNOSIS: Final = "_Decision support, not a diagnosis. Verify against the full report._"

#: Reasons a clinician can give when overriding a genomic card (system: OncoCDS override reasons).
OVERRIDE_SYSTEM: Final = "urn:oncocds:override-reason"
_REASONS: Final = (
    ("benefit-outweighs-risk", "Benefit outweighs risk for this patient"),
    ("result-outdated", "Genomic result is outdated or superseded"),
    ("tumour-context-differs", "Tumour type or clinical context differs"),
    ("clinical-trial", "Patient is on a clinical trial protocol"),
    ("already-addressed", "Already addressed by the care team"),
)
OVERRIDE_REASONS: Final = tuple(
    OverrideReason(system=OVERRIDE_SYSTEM, code=code, display=display) for code, display in _REASONS
)


def source(kind: str, display: str) -> Source:
    kb = load_knowledge_base()
    return Source(
        label=SOURCE_LABEL,
        topic=Coding(
            system=CARD_KIND_SYSTEM, code=kind, display=f"{display} (KB {kb.version[:40]})"
        ),
    )


_DOUBLED: Final = re.compile(r"\b([\w*/-]+)(?:\s+\1\b)+", re.IGNORECASE)
#: GitHub Flavored Markdown characters that would format text taken from data (star alleles,
#: underscores in names, pipes in table cells).
_MARKDOWN: Final = re.compile(r"([\\`*_\[\]<>|~])")


def clinical_card(
    *,
    summary: str,
    detail: str,
    indicator: Literal["info", "warning", "critical"],
    source: Source,
    suggestions: list[Suggestion] | None = None,
) -> Card:
    """A card a clinician may act on or dismiss: the service's override reasons, and at most
    one suggestion chosen (CDS Hooks 2.0 cds-resp-6 wants a selectionBehavior with them)."""
    return Card(
        summary=summary,
        detail=detail,
        indicator=indicator,
        source=source,
        suggestions=suggestions,
        selection_behavior="at-most-one" if suggestions else None,
        override_reasons=list(OVERRIDE_REASONS),
    )


def undoubled(text: str) -> str:
    """``DPYD DPYD poor metabolizer`` → ``DPYD poor metabolizer`` (a word repeated at once)."""
    return _DOUBLED.sub(r"\1", text)


def md(text: str) -> str:
    """Text from data (names, alleles, diseases) escaped for GitHub Flavored Markdown."""
    return _MARKDOWN.sub(r"\\\1", text)


def summary(text: str) -> str:
    """A summary under 140 characters (CDS Hooks 2.0 §Card), cut at a word with an ellipsis,
    no word doubled."""
    text = undoubled(text)
    if len(text) < 140:
        return text
    cut = text[:136].rsplit(" ", 1)[0]
    return cut + " …"


def prefetched_resources(request: ResolvedRequest, *keys: str) -> list[dict[str, Any]]:
    """The resources of the given prefetch keys (Bundles unpacked; null and absent give none)."""
    found: list[dict[str, Any]] = []
    for key in keys:
        value = request.prefetch.get(key)
        if value is not None:
            found.extend(iter_resources(value))
    return found


@dataclass(slots=True)
class PatientGenomics:
    """What a patient's genomic results mean. Shared by the calls that send the same results
    (see :func:`interpret_prefetch`): read it, never change it."""

    intake: IntakeResult
    context: ContextResult
    interpretation: Interpretation
    genes_studied: set[str]
    #: sha256 of the inputs (canonical JSON of the Observations and context resources, the
    #: extra medications, the tumour type): equal fingerprints, equal interpretations.
    fingerprint: str


#: An EHR sends a patient's same Observations on every chart open and order: intake,
#: interpretation and the genes studied are computed once per distinct input per process.
_recent_genomics: LruCache[str, PatientGenomics] = LruCache(256)


def _fingerprint(
    observations: list[dict[str, Any]], context_resources: list[dict[str, Any]]
) -> str:
    digest = hashlib.sha256()
    for group in (observations, context_resources):
        for resource in group:
            digest.update(canonical_json(resource))
            digest.update(b"\x1e")
        digest.update(b"\x1d")
    return digest.hexdigest()


def interpret_prefetch(
    request: ResolvedRequest,
    *,
    observation_keys: tuple[str, ...],
    context_keys: tuple[str, ...],
) -> PatientGenomics:
    """Read variant/genotype Observations and patient context from prefetch; interpret them.

    Pure in its inputs (the knowledge base is fixed per process), so a result computed for
    the same inputs before is returned again (shared: read only).
    """
    observations = prefetched_resources(request, *observation_keys)
    context_resources = prefetched_resources(request, *context_keys)
    fingerprint = _fingerprint(observations, context_resources)
    known = _recent_genomics.get(fingerprint)
    if known is not None:
        return known
    try:
        intake = read_fhir_variants(observations)
    except IntakeError as exc:
        # Nothing readable: keep the problems so the service can say so (never a 500); the
        # message is not shown, and no card reads how many records there were.
        intake = IntakeResult(problems=list(exc.problems))
    context = patient_context_from_resources(context_resources)
    interpretation = interpret(intake.alterations, context.context, genotypes=intake.genotypes)
    studied = fhir_genes_studied(observations)
    studied.update(g.gene.symbol.upper() for g in intake.genotypes)
    studied.update(a.gene.symbol.upper() for a in interpretation.alterations if a.gene is not None)
    genomics = PatientGenomics(intake, context, interpretation, studied, fingerprint)
    _recent_genomics.put(fingerprint, genomics)
    return genomics


def unreadable_card(genomics: PatientGenomics) -> Card | None:
    """A warning when the patient has genomic Observations but none could be read."""
    intake = genomics.intake
    if intake.alterations or intake.genotypes or not intake.problems:
        return None
    listed = "\n".join(f"- {p.location}: {p.reason}" for p in intake.problems[:10])
    more = len(intake.problems) - 10
    return Card(
        summary=summary(f"{len(intake.problems)} genomic result(s) could not be read"),
        detail=(
            "The genomic Observations below do not follow the Genomics Reporting Variant shape "
            "this service reads, so they were not interpreted (integration issue, not a "
            f"clinical finding):\n\n{listed}" + (f"\n- and {more} more" if more > 0 else "")
        ),
        indicator="warning",
        source=source("unreadable-genomic-data", "Unreadable genomic data"),
    )


def evidence_link(evidence: Evidence) -> str:
    label = md(evidence.label)
    if evidence.level:
        label += f" (level {md(evidence.level)})"
    parts = [f"[{label}]({evidence.url})"]
    parts.extend(
        f"[PMID {pmid}](https://pubmed.ncbi.nlm.nih.gov/{pmid}/)" for pmid in evidence.pmids[:3]
    )
    return ", ".join(parts)


def citations(evidence: Iterable[Evidence], limit: int = 4) -> str:
    items = list(evidence)
    text = "; ".join(evidence_link(e) for e in items[:limit])
    if len(items) > limit:
        text += f"; and {len(items) - limit} more"
    return text


def drugs_text(finding: TherapeuticFinding) -> str:
    """The regimen as plain text (summaries, suggestion labels)."""
    return " + ".join(d.name for d in finding.drugs)


def drugs_md(finding: TherapeuticFinding) -> str:
    """The regimen escaped for markdown (card details)."""
    return md(drugs_text(finding))


def phenotype_text(finding: PharmacogenomicFinding) -> str:
    """The phenotype without the gene symbol it may already start with (``poor metabolizer``)."""
    phenotype = finding.phenotype.strip()
    gene = finding.gene.symbol
    if phenotype.upper().startswith(gene.upper() + " "):
        phenotype = phenotype[len(gene) + 1 :]
    return phenotype


_last_index = threading.local()


def alterations_by_id(interpretation: Interpretation) -> dict[str, Alteration]:
    """The interpretation's alterations by id; the last index is kept per thread, since a
    service asks once per finding while it builds one response (900 ids → 50)."""
    last = getattr(_last_index, "value", None)
    if last is not None and last[0] is interpretation:
        index: dict[str, Alteration] = last[1]
        return index
    index = {a.id: a for a in interpretation.alterations}
    _last_index.value = (interpretation, index)
    return index


def label_of(interpretation: Interpretation, alteration_id: str) -> str:
    alteration = alterations_by_id(interpretation).get(alteration_id)
    return alteration.label if alteration is not None else "alteration"
