"""Storing an analysis and reading it back.

``store_analysis`` is what ``POST /api/v1/analyses``, the CDS services and the HL7 runner call
after interpretation: it builds the Genomics Reporting transaction Bundle once and stores it with
the interpretation JSON, so every later view (API, report page, write-back) shows the same thing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from cds_service import __version__
from cds_service.analyses import repository
from cds_service.db.base import utcnow
from cds_service.errors import BadRequestError, NotFoundError
from cds_service.models.analysis import SOURCE_KINDS, Analysis
from inference.genomics.model import Interpretation
from inference.genomics.serialize import interpretation_from_json, interpretation_to_json
from integrations.errors import FhirMappingError
from integrations.fhir.genomics_report import ReportContext, build_genomic_report_bundle

SourceKind = Literal["fhir", "vcf", "text", "hl7", "cds-hook"]
MAX_PATIENT_REF = 256


def store_analysis(
    session: Session,
    interpretation: Interpretation,
    patient_ref: str,
    source_kind: SourceKind,
    *,
    issued: datetime | None = None,
    specimen_ref: str | None = None,
    performer_ref: str | None = None,
    oncocds_version: str = __version__,
) -> Analysis:
    """Build the report Bundle for ``interpretation`` and store both; flushes, never commits.

    Args:
        session: the caller's session (request session or CLI unit of work).
        interpretation: the interpreter's result.
        patient_ref: ``Patient/123`` (an identifier, never demographics).
        source_kind: where the variants came from: fhir, vcf, text, hl7 or cds-hook.
        issued: report time (defaults to now, UTC).
        specimen_ref: ``Specimen/…`` when known.
        performer_ref: ``Organization/…`` of the lab when known.
        oncocds_version: recorded in the Provenance agent.

    Returns:
        The stored :class:`Analysis` (``id`` is a new UUID).

    Raises:
        BadRequestError: unknown source kind, empty or over-long patient reference, or an
            interpretation that cannot be expressed as FHIR.
        DatabaseError: the row could not be written.
    """
    if source_kind not in SOURCE_KINDS:
        raise BadRequestError(f"unknown source kind {source_kind!r}")
    if not patient_ref or len(patient_ref) > MAX_PATIENT_REF:
        raise BadRequestError("a patient reference of 1-256 characters is required")
    issued = issued or utcnow()
    context = ReportContext(
        patient_reference=patient_ref,
        oncocds_version=oncocds_version,
        kb_version=interpretation.kb_version,
        issued=issued,
        specimen_reference=specimen_ref,
        performer_reference=performer_ref,
    )
    try:
        # Unvalidated on the request path (identical output, ~1 s faster per report; see
        # build_genomic_report_bundle); the suite validates every resource the builder emits.
        bundle = build_genomic_report_bundle(interpretation, context, validate=False)
    except FhirMappingError as exc:
        raise BadRequestError(f"the interpretation cannot be reported: {exc.message}") from exc
    tumour = interpretation.context.tumour_type
    analysis = Analysis(
        id=str(uuid.uuid4()),
        created=issued,
        patient_ref=patient_ref,
        source_kind=source_kind,
        tumour_type_code=tumour.code if tumour else None,
        kb_version=interpretation.kb_version or "unknown",
        oncocds_version=oncocds_version,
        interpretation=interpretation_to_json(interpretation),
        report_bundle=bundle,
    )
    return repository.add_analysis(session, analysis)


def get_analysis_or_404(session: Session, analysis_id: str) -> Analysis:
    """The analysis, or :class:`NotFoundError` (also for ids that are not UUIDs)."""
    try:
        canonical = str(uuid.UUID(analysis_id))
    except ValueError as exc:
        raise NotFoundError("no such analysis") from exc
    analysis = repository.get_analysis(session, canonical)
    if analysis is None:
        raise NotFoundError("no such analysis")
    return analysis


def load_interpretation(analysis: Analysis) -> Interpretation:
    """The stored interpretation as domain objects (for cards and the report page)."""
    return interpretation_from_json(analysis.interpretation)


def report_bundle(analysis: Analysis) -> dict[str, Any]:
    return dict(analysis.report_bundle)
