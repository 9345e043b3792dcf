"""What happens to a stored message after its ACK: the :class:`ResultProcessor` protocol.

The worker decodes a claimed message and hands it to a processor with a database session; the
processor's writes and the message's new status commit together (a report is stored exactly when
its message is marked processed).

:class:`GeneticResultProcessor` is the default: it reads ORU^R01 genetic results into domain
variants (:func:`integrations.hl7v2.oru.read_genetic_results`), interprets them
(``inference.genomics.interpret``) and stores the analysis with its Genomics DiagnosticReport
Bundle in the same session, so the report exists exactly when the message is processed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session

from cds_service.analyses.service import store_analysis
from cds_service.settings import WritebackSettings
from cds_service.writeback.service import enqueue_writeback
from inference.genomics import PatientContext, interpret
from inference.genomics.model import TumourType, Variant
from inference.genomics.tumour_types import find_tumour_type
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


def patient_reference(genetic: GeneticResultMessage) -> str | None:
    """A FHIR conditional reference on the PID-3 identifier and its assigning authority.

    ``Patient?identifier=urn:oid:1.2.3|MRN12345`` when CX.4.2 is an OID (ISO), the URI itself
    for a URI authority, else a system named after the CX.4.1 namespace id.
    """
    patient = genetic.patient
    if patient is None or not patient.value:
        return None
    universal = patient.authority_universal_id
    if universal and patient.authority_universal_id_type.upper() == "ISO":
        system = f"urn:oid:{universal}"
    elif universal:
        system = universal
    else:
        system = f"urn:oncocds:hl7-assigning-authority:{patient.assigning_authority or 'unknown'}"
    return f"Patient?identifier={system}|{patient.value}"[:256]


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


#: HL7 table 0396 coding-system names → the tumour table's systems (others: by CWE.2 text).
#: I10C is ICD-10-CM, NCIT the NCI thesaurus (OncoTree's external references).
_HL7_SYSTEMS = {
    "SCT": "snomed",
    "I10": "icd10",
    "I10C": "icd10cm",
    "ICDO3": "icdo3",
    "NCIT": "ncit",
    "ONCOTREE": "oncotree",
}


def tumour_type_of(genetic: GeneticResultMessage) -> tuple[TumourType | None, str | None]:
    """The first diagnosis of the message the curated tumour table knows, by code, then by
    name; (None, None) when there is none (never a guess)."""
    for diagnosis in genetic.diagnoses:
        system = _HL7_SYSTEMS.get(diagnosis.system.strip().upper())
        candidates = []
        if system == "oncotree":
            candidates.append(diagnosis.code)
        elif system is not None and diagnosis.code:
            candidates.append(f"{system}|{diagnosis.code}")
        if diagnosis.text:
            candidates.append(diagnosis.text)
        for candidate in candidates:
            found = find_tumour_type(candidate)
            if found is not None:
                return found, diagnosis.source
    return None, None


class GeneticResultProcessor:
    """The default processor: ORU^R01 genetic results → variants → interpretation → stored
    analysis with its Genomics DiagnosticReport (and a write-back job when configured)."""

    def __init__(self, writeback: WritebackSettings | None = None) -> None:
        self._writeback = writeback if writeback is not None and writeback.enabled else None

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
        """Interpret the variants and store the analysis with its Genomics DiagnosticReport.

        The analysis row (report Bundle, report page, write-back job) is written with
        ``session``, so it commits exactly when the message is marked processed. The tumour type
        comes from the message's diagnosis (:func:`tumour_type_of`); without one the summary
        says "tumour type unknown" and the interpretation is tumour-type agnostic (the report
        says so). The report's subject is a conditional reference on the PID-3 id.
        """
        summary = genetic_summary(genetic)
        errors = [str(p) for p in genetic.intake.problems]
        tumour, source = tumour_type_of(genetic)
        summary["tumourType"] = (
            {"code": tumour.code, "name": tumour.name, "source": source}
            if tumour is not None
            else {"code": None, "name": "tumour type unknown", "source": None}
        )
        if tumour is None:
            summary["tumourTypeNote"] = (
                "tumour type unknown: the message names no diagnosis the curated tumour table "
                "knows (OBX 81259-4/51967-8, OBR-31, DG1-3); the interpretation is tumour-type "
                "agnostic"
            )
        patient_ref = patient_reference(genetic)
        if patient_ref is None or not (genetic.intake.alterations or genetic.intake.genotypes):
            return ProcessingResult(status="processed", summary=summary, errors=errors)
        interpretation = interpret(
            genetic.intake.alterations,
            PatientContext(tumour_type=tumour),
            genotypes=genetic.intake.genotypes,
        )
        analysis = store_analysis(session, interpretation, patient_ref, "hl7")
        if self._writeback is not None:
            enqueue_writeback(session, analysis, self._writeback)
        summary["analysisId"] = analysis.id
        summary["therapeuticFindings"] = len(interpretation.therapeutic)
        summary["notInKnowledgeBase"] = len(interpretation.unknown)
        return ProcessingResult(
            status="processed",
            summary=summary,
            result_ref=f"Analysis/{analysis.id}",
            errors=errors,
        )
