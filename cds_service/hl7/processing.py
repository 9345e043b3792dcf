"""What happens to a stored message after its ACK: the :class:`ResultProcessor` protocol.

The worker decodes a claimed message and hands it to a processor with a database session; the
processor's writes and the message's new status commit together (a report is stored exactly when
its message is marked processed).

:class:`GeneticResultProcessor` is the default: it reads ORU^R01 genetic results into domain
variants (:func:`integrations.hl7v2.oru.read_genetic_results`) and hands them to
:meth:`GeneticResultProcessor.handle_variants`, which today stores an identifier-level summary on
the inbox row. **Integration point**: interpretation (``inference.genomics.interpret``) and the
Genomics DiagnosticReport are plugged in by overriding ``handle_variants`` (or editing it):
interpret ``genetic.intake.alterations``, build and store the report with ``session``, and return
``ProcessingResult(status="processed", summary=..., result_ref=f"DiagnosticReport/{report_id}")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session

from inference.genomics.model import Variant
from integrations.hl7v2.message import MessageHeader
from integrations.hl7v2.oru import GeneticResultMessage, read_genetic_results

#: Message types with a processor; everything else is stored as not-processed (or refused).
PROCESSED_TYPES = frozenset({"ORU^R01"})


class TransientProcessingError(Exception):
    """A failure worth retrying later (a peer or the database was unavailable).

    The message must not contain PHI: it is stored as the inbox row's ``last_error``.
    """


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A stored message as the worker hands it to a processor."""

    inbox_id: int
    header: MessageHeader
    text: str
    attempt: int


@dataclass(slots=True)
class ProcessingResult:
    """A processor's verdict.

    Attributes:
        status: ``processed``, or ``not-processed`` when the message holds nothing to process.
        summary: identifier-level JSON stored on the inbox row (``result``).
        result_ref: where the result lives (``DiagnosticReport/<id>``), when stored elsewhere.
        errors: readable, PHI-free problems; they make the application ACK an AE.
        reason: why the message was not processed (stored as ``last_error``).
    """

    status: Literal["processed", "not-processed"]
    summary: dict[str, Any] = field(default_factory=dict)
    result_ref: str | None = None
    errors: list[str] = field(default_factory=list)
    reason: str | None = None


class ResultProcessor(Protocol):
    """Turns one stored message into results. Raise :class:`TransientProcessingError` to retry;
    :class:`integrations.hl7v2.errors.Hl7Error` (or any other exception) fails the message."""

    def process(self, message: InboundMessage, session: Session) -> ProcessingResult: ...


def variant_summary(variant: Variant) -> dict[str, Any]:
    """Identifier-level JSON for one variant (no free text from the message)."""
    return {
        "id": variant.id,
        "label": variant.label,
        "gene": variant.gene.symbol if variant.gene else None,
        "hgncId": variant.gene.hgnc_id if variant.gene else None,
        "proteinChange": variant.protein_change,
        "hgvsC": variant.hgvs_c,
        "hgvsP": variant.hgvs_p,
        "hgvsG": variant.hgvs_g,
        "position": variant.position.key if variant.position else None,
        "origin": variant.origin.value,
        "alleleFrequency": variant.allele_frequency,
        "sourceRef": variant.source_ref,
    }


def genetic_summary(genetic: GeneticResultMessage) -> dict[str, Any]:
    patient = genetic.patient
    return {
        "patient": (
            {
                "id": patient.value,
                "assigningAuthority": patient.assigning_authority,
                "authorityUniversalId": patient.authority_universal_id,
                "typeCode": patient.type_code,
            }
            if patient
            else None
        ),
        "geneticOrders": list(genetic.genetic_orders),
        "recordsRead": genetic.intake.records_read,
        "variants": [
            variant_summary(a) for a in genetic.intake.alterations if isinstance(a, Variant)
        ],
        "problems": [{"location": p.location, "reason": p.reason} for p in genetic.intake.problems],
    }


class GeneticResultProcessor:
    """The default processor: ORU^R01 genetic results → variants → summary on the inbox row."""

    def process(self, message: InboundMessage, session: Session) -> ProcessingResult:
        if message.header.type_key not in PROCESSED_TYPES:
            return ProcessingResult(
                status="not-processed",
                reason=f"message type {message.header.type_key} is not processed",
            )
        genetic = read_genetic_results(message.text)
        if not genetic.genetic_orders:
            return ProcessingResult(
                status="not-processed",
                reason="ORU^R01 without genetic results (no LOINC 81247-9 panel or variant rows)",
            )
        return self.handle_variants(message, genetic, session)

    def handle_variants(
        self, message: InboundMessage, genetic: GeneticResultMessage, session: Session
    ) -> ProcessingResult:
        """Act on the variants read. Override to interpret them and store a report (see the
        module docstring); this default stores the identifier-level summary only."""
        return ProcessingResult(
            status="processed",
            summary=genetic_summary(genetic),
            errors=[str(p) for p in genetic.intake.problems],
        )
