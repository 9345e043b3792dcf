"""From an uploaded body to an :class:`Interpretation`: format choice, patient context, errors.

Everything the client can get wrong becomes a :class:`BadRequestError` naming what and where
(record locations from the intake, close matches for an unknown tumour type); nothing here
touches the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

from cds_service.analyses.service import SourceKind
from cds_service.errors import BadRequestError
from inference.errors import InferenceError, UnknownTumourTypeError
from inference.genomics import Interpretation, TumourType, interpret, resolve_tumour_type
from inference.genomics.model import Origin
from integrations.errors import IntakeError, RecordProblem
from integrations.fhir.clinical_context import iter_resources, patient_context_from_resources
from integrations.fhir.variant_intake import read_fhir_variants
from integrations.intake import with_default_origin
from integrations.readers import read_variants

_CONTENT_TYPES: Final = {
    "application/fhir+json": "fhir",
    "application/json": "fhir",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "text/vcf": "vcf",
    "text/x-vcf": "vcf",
}
_SOURCE_KIND: Final[dict[str, SourceKind]] = {
    "fhir": "fhir",
    "vcf": "vcf",
    "csv": "text",
    "tsv": "text",
    "text": "text",
}
_PROBLEMS_IN_MESSAGE: Final = 5


@dataclass(frozen=True, slots=True)
class AnalysisInput:
    body: bytes
    content_type: str = ""
    input_format: str | None = None
    tumour_type: str | None = None
    patient: str | None = None
    build: str | None = None
    clinical_context: str | None = None
    origin: str | None = None


@dataclass(slots=True)
class UploadResult:
    interpretation: Interpretation
    patient_ref: str
    source_kind: SourceKind
    problems: list[RecordProblem] = field(default_factory=list)
    unmapped_conditions: list[str] = field(default_factory=list)


def _problems_text(problems: list[RecordProblem]) -> str:
    shown = "; ".join(str(p) for p in problems[:_PROBLEMS_IN_MESSAGE])
    more = len(problems) - _PROBLEMS_IN_MESSAGE
    return shown + (f"; and {more} more" if more > 0 else "")


def _format(upload: AnalysisInput) -> str | None:
    if upload.input_format:
        return upload.input_format
    media = upload.content_type.split(";", 1)[0].strip().lower()
    return _CONTENT_TYPES.get(media)


def _tumour(text: str | None) -> TumourType | None:
    if not text:
        return None
    try:
        return resolve_tumour_type(text)
    except UnknownTumourTypeError as exc:
        raise BadRequestError(str(exc)) from exc


def interpret_upload(upload: AnalysisInput) -> UploadResult:
    """Read, contextualise and interpret one upload.

    Raises:
        BadRequestError: empty or unreadable input, no variants, unknown tumour type, no
            patient reference, or more alterations than one interpretation accepts.
    """
    if not upload.body.strip():
        raise BadRequestError("the request body is empty")
    explicit_tumour = _tumour(upload.tumour_type)
    flags = frozenset(
        part.strip() for part in (upload.clinical_context or "").split(",") if part.strip()
    )
    fmt = _format(upload)
    try:
        origin = Origin(upload.origin) if upload.origin else None
    except ValueError as exc:
        raise BadRequestError("origin must be somatic, germline or unknown") from exc
    resources: list[dict[str, object]] = []
    try:
        if fmt == "fhir":
            try:
                parsed = json.loads(upload.body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise BadRequestError("the body is not valid JSON") from exc
            resources = list(iter_resources(parsed))
            # 48002-0 in an Observation wins; the caller's origin fills in where it is absent.
            intake = with_default_origin(
                read_fhir_variants(parsed, build=upload.build, name="request body"), origin
            )
        else:
            intake = read_variants(
                upload.body, fmt=fmt, build=upload.build, origin=origin, name="request body"
            )
            fmt = fmt or "text"
    except IntakeError as exc:
        detail = f": {_problems_text(exc.problems)}" if exc.problems else ""
        raise BadRequestError(f"{exc.message}{detail}") from exc
    if not intake.alterations and not intake.genotypes:
        detail = f" ({_problems_text(intake.problems)})" if intake.problems else ""
        raise BadRequestError(f"no variants found in the request body{detail}")
    context_result = patient_context_from_resources(
        resources, tumour_type=explicit_tumour, clinical_context=flags
    )
    patient_ref = upload.patient or (
        f"Patient/{context_result.patient_id}" if context_result.patient_id else None
    )
    if patient_ref is None:
        raise BadRequestError(
            "a patient reference is required: send a Patient in the Bundle or ?patient=Patient/ID"
        )
    try:
        interpretation = interpret(
            intake.alterations, context_result.context, genotypes=intake.genotypes
        )
    except InferenceError as exc:
        raise BadRequestError(str(exc)) from exc
    return UploadResult(
        interpretation=interpretation,
        patient_ref=patient_ref,
        source_kind=_SOURCE_KIND.get(fmt or "text", "text"),
        problems=intake.problems,
        unmapped_conditions=context_result.unmapped_conditions,
    )
