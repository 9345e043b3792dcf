"""Imaging analyses over HTTP (issue #15).

- ``POST /api/v1/imaging-analyses``: by reference (``application/json``:
  :class:`~cds_service.imaging.schemas.ImagingAnalysisRequest`) or an upload (a raw
  ``image/png``, ``image/jpeg``, ``image/tiff`` or ``application/dicom`` body, or
  ``multipart/form-data`` with image parts; ``?patient=Patient/…``). 202 with the analysis id
  and ``Location`` at once: the model runs in a job. 413 over
  ``ONCOCDS_IMAGING_SERVICE__MAX_UPLOAD_BYTES``, 415 (OperationOutcome) for another type or
  bytes that are not what the type says, 503 without an installed model.
- ``GET /api/v1/imaging-analyses/{id}``: while not done, 202 with the status document; when
  every result is done, the FHIR transaction Bundle (DiagnosticReport, Observations, Media,
  Device, Provenance; :mod:`integrations.fhir.imaging_report`); when one failed, 200 with the
  status document and the reasons.
- ``GET /api/v1/imaging-analyses/{id}/heatmaps/{n}.png``: the n-th image's heatmap (0-based,
  in the order of the Bundle's Observations).

These three are for clinical API clients, authenticated like ``/api/v1/analyses`` (the trusted
client's JWT, ``aud`` the exact URL, checked before the body is read). Every call is audited
(``imaging.request``, ``imaging.read``), with the client's ``iss`` as agent.

- ``POST /api/v1/imaging/pacs-notifications``: the PACS's ``OnStableStudy`` Lua script
  (``cds_service/imaging/orthanc.lua``) announces a study; the bearer token is
  ``ONCOCDS_IMAGING_SERVICE__NOTIFY_TOKEN`` (compared in constant time). The study is analysed
  from ``ONCOCDS_IMAGING_SERVICE__PACS_DICOMWEB_URL`` before anyone opens the chart.
- ``GET /imaging/model-card``: the installed bundle's model card (no patient data).

The imaging report page a ``histopathology-ai`` card links to is a report page
(:mod:`cds_service.reports.endpoints`).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from cds_service.api.deps import RequestAudit, RequestAuditDep, SettingsDep, request_audit
from cds_service.api.errors import FHIR_JSON
from cds_service.api.responses import (
    BINARY,
    NO_SUCH_ANALYSIS,
    OBJECT,
    client_responses,
    request_body,
)
from cds_service.audit.service import AuditEntity, Outcome
from cds_service.db.session import DbSession
from cds_service.errors import (
    AuthenticationError,
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    OncoCDSError,
    PayloadTooLargeError,
)
from cds_service.imaging import repository
from cds_service.imaging.report import (
    MODEL_CARD_PATH,
    NoFhirSourceError,
    enqueue_imaging_writeback,
    imaging_bundle,
    section_provider,
)
from cds_service.imaging.schemas import (
    PATIENT_REF,
    RESOURCE_REF,
    ImagingAnalysisRequest,
    ImagingAnalysisStatus,
    PacsNotification,
    ResultStatus,
)
from cds_service.imaging.service import (
    ImageReference,
    ImagingRuntime,
    ImagingUnavailableError,
    InstalledModel,
    Upload,
    create_request,
    ensure_results,
    request_status,
)
from cds_service.models.imaging import ImagingResult
from cds_service.security.deps import ClientCaller
from cds_service.settings import Settings
from integrations.imaging import (
    IMAGE_TYPES,
    EndpointAllowlist,
    ImageNotAllowedError,
    UnsupportedImageError,
)
from integrations.imaging.http import MediaType
from integrations.imaging.multipart import parse_multipart
from integrations.imaging.raster import check_signature

router = APIRouter(tags=["imaging"])

_JSON_TYPES: Final = frozenset({"application/json", "application/fhir+json"})
_MAX_PARTS: Final = 20


class UnsupportedMediaTypeError(OncoCDSError):
    """415: a body type (or image bytes) this API does not take."""

    status_code = 415
    code = "not-supported"


def _runtime(request: Request) -> ImagingRuntime:
    runtime: ImagingRuntime = request.app.state.imaging
    return runtime


async def _raw_body(request: Request) -> bytes:
    # Read here (async) so the handler can stay sync; the app-wide body limit has applied.
    return await request.body()


def _uploads(body: bytes, media: MediaType) -> list[Upload]:
    if media.essence == "multipart/form-data":
        from integrations.imaging.errors import CorruptImageError

        try:
            parts = parse_multipart(body, media, max_parts=_MAX_PARTS)
        except CorruptImageError as exc:
            raise BadRequestError(f"unreadable multipart body: {exc.reason}") from exc
        found = [Upload(p.content, p.media_type.essence) for p in parts if p.content]
    else:
        found = [Upload(body, media.essence)]
    if not found:
        raise BadRequestError("no image in the request body")
    for upload in found:
        if upload.content_type not in IMAGE_TYPES:
            raise UnsupportedMediaTypeError(
                f"content type {upload.content_type or 'none'!r} is not supported; send one of "
                + ", ".join(sorted(IMAGE_TYPES))
            )
        try:
            check_signature(upload.data, upload.content_type)
        except UnsupportedImageError as exc:
            raise UnsupportedMediaTypeError(exc.reason) from exc
    return found


def _references(body: ImagingAnalysisRequest) -> list[ImageReference]:
    refs = [
        ImageReference(kind="dicomweb-study", endpoint=s.endpoint, study_uid=s.study_uid)
        for s in body.studies
    ]
    if body.references and not body.fhir_server:
        raise BadRequestError("references need fhirServer")
    refs += [
        ImageReference(kind="fhir-resource", endpoint=body.fhir_server, resource=r)
        for r in dict.fromkeys(body.references)
    ]
    if not refs:
        raise BadRequestError("nothing to analyse: give references, studies or an image")
    return refs


def _model_or_audited_refusal(
    runtime: ImagingRuntime, audit: RequestAudit, agent: str
) -> InstalledModel:
    """The installed model, or a 503 recorded in the audit trail (no bundle installed)."""
    try:
        return runtime.require_model()
    except ImagingUnavailableError as exc:
        audit.refused(
            action="C",
            event_type="imaging.request",
            event_subtype="unavailable",
            reason=exc.message,
            agent_who=agent,
        )
        raise


def _check_allowlist(
    settings: Settings,
    references: list[ImageReference],
    audit: RequestAudit,
    agent: str,
    patient_ref: str | None,
) -> None:
    """SSRF guard up front: an endpoint off the allowlist is refused (403) and audited."""
    allowlist = EndpointAllowlist(settings.imaging_service.allowlist)
    for ref in references:
        if ref.endpoint is None:
            continue
        try:
            allowlist.check(ref.endpoint)
        except ImageNotAllowedError as exc:
            audit.refused(
                action="C",
                event_type="imaging.request",
                event_subtype="refused",
                reason=exc.reason,
                agent_who=agent,
                patient_id=patient_ref,
                details={"kind": ref.kind, "study_uid": ref.study_uid, "resource": ref.resource},
            )
            raise ForbiddenError(f"refused: {exc.reason}") from exc


def _parse_request(body: bytes) -> ImagingAnalysisRequest:
    import re

    try:
        parsed = ImagingAnalysisRequest.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        where = ""
        if isinstance(exc, ValidationError):
            # Field locations only, never the offending values.
            where = ": " + "; ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        raise BadRequestError(f"invalid imaging analysis request{where}") from exc
    for ref in parsed.references:
        if not re.match(RESOURCE_REF, ref):
            raise BadRequestError(
                "references must be ImagingStudy/{id}, DocumentReference/{id} or Media/{id}"
            )
    return parsed


def _status(
    runtime: ImagingRuntime, request_id: str, results: list[ImagingResult], counts: dict[str, int]
) -> ImagingAnalysisStatus:
    model = runtime.model.label if runtime.model else (results[0].model_version if results else "")
    return ImagingAnalysisStatus(
        id=request_id,
        status=request_status(results),
        model=model,
        results=[
            ResultStatus(
                id=r.id,
                status=r.status,
                error=r.error,
                images=counts.get(r.id, 0),
            )
            for r in results
        ],
    )


@router.post(
    "/api/v1/imaging-analyses",
    status_code=202,
    responses=client_responses(
        {202: "accepted: the analysis id, its status and Location"},
        {
            400: "unreadable request",
            413: "upload over the size limit",
            415: "unsupported content type",
            503: "no model bundle installed",
        },
    ),
    openapi_extra=request_body(
        {
            "application/json": OBJECT,
            "image/png": BINARY,
            "image/jpeg": BINARY,
            "image/tiff": BINARY,
            "application/dicom": BINARY,
            "multipart/form-data": OBJECT,
        }
    ),
)
def create_imaging_analysis(
    *,
    caller: ClientCaller,
    body: Annotated[bytes, Depends(_raw_body)],
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    audit: RequestAuditDep,
    patient: Annotated[str | None, Query(max_length=80, pattern=PATIENT_REF)] = None,
    derived_from: Annotated[
        str | None, Query(alias="derivedFrom", max_length=120, pattern=RESOURCE_REF)
    ] = None,
) -> Any:
    """Accept an analysis by reference or upload; the model runs in a job (202)."""
    runtime = _runtime(request)
    cfg = settings.imaging_service
    if len(body) > cfg.max_upload_bytes:
        raise PayloadTooLargeError(
            f"request body exceeds the imaging upload limit of {cfg.max_upload_bytes} bytes"
        )
    media = MediaType.parse(request.headers.get("content-type", ""))
    model = _model_or_audited_refusal(runtime, audit, caller.iss)
    token: str | None = None
    ttl = 3600.0
    uploads: dict[str, Upload] = {}
    if media.essence in _JSON_TYPES:
        parsed = _parse_request(body)
        patient_ref: str | None = parsed.patient
        references = _references(parsed)
        if parsed.fhir_authorization is not None:
            token = parsed.fhir_authorization.access_token.get_secret_value()
            ttl = float(parsed.fhir_authorization.expires_in or ttl)
        origin = "api"
    else:
        found = _uploads(body, media)
        patient_ref = patient
        uploads = {u.reference().source_key: u for u in found}
        references = [u.reference(derived_from) for u in found]
        origin = "upload"
    _check_allowlist(settings, references, audit, caller.iss, patient_ref)
    results = ensure_results(
        session,
        model,
        references,
        patient_ref=patient_ref,
        uploads=uploads,
        token=token,
        token_ttl_s=ttl,
        vault=runtime.tokens,
    )
    stored = create_request(
        session, results, patient_ref=patient_ref, origin=origin, agent=caller.iss
    )
    status = _status(runtime, stored.id, results, {})
    if status.status == "done":  # every result reused: the report can be written back now
        enqueue_imaging_writeback(session, settings, patient_ref)
    # Committed before the response: the client may GET at once and the job must find it.
    session.commit()
    audit.record(
        action="C",
        event_type="imaging.request",
        event_subtype=origin,
        agent_who=caller.iss,
        patient_id=patient_ref,
        entities=[
            {"type": "ImagingRequest", "id": stored.id},
            *[AuditEntity(type="ImagingResult", id=r.id) for r in results],
        ],
        details={
            "references": [r.as_json() for r in references if r.kind != "upload"][:50],
            "uploads": len(uploads),
            "bundle_sha256": model.bundle_sha256,
        },
    )
    location = f"/api/v1/imaging-analyses/{stored.id}"
    return JSONResponse(
        status.model_dump(mode="json", by_alias=True),
        status_code=202,
        headers={"Location": location, "X-Analysis-Id": stored.id},
    )


AnalysisId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-f\-]{36}$")]


def _load(session: DbSession, analysis_id: str) -> tuple[Any, list[ImagingResult]]:
    stored = repository.get_request(session, analysis_id)
    if stored is None:
        raise NotFoundError("no such imaging analysis")
    return stored, repository.get_results(session, stored.result_ids)


@router.get(
    "/api/v1/imaging-analyses/{analysis_id}",
    responses=client_responses(
        {
            200: "FHIR Bundle when done; the status document when failed",
            202: "the status document while in progress",
        },
        {404: NO_SUCH_ANALYSIS},
    ),
)
def read_imaging_analysis(
    analysis_id: AnalysisId,
    *,
    caller: ClientCaller,
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    audit: RequestAuditDep,
) -> Any:
    """The analysis as FHIR when done, else its status."""
    stored, results = _load(session, analysis_id)
    images = repository.images_of(session, [r.id for r in results])
    status = _status(_runtime(request), stored.id, results, {k: len(v) for k, v in images.items()})
    audit.record(
        action="R",
        event_type="imaging.read",
        agent_who=caller.iss,
        patient_id=stored.patient_ref,
        entities=[{"type": "ImagingRequest", "id": stored.id}],
        details={"status": status.status},
    )
    if status.status == "done":
        try:
            bundle = imaging_bundle(settings, stored, results, images)
        except NoFhirSourceError as exc:
            # Stored and served (heatmaps), but no FHIR report without a source or patient.
            body = status.model_dump(mode="json", by_alias=True)
            body["fhir"] = f"not available: {exc}"
            return JSONResponse(body)
        return JSONResponse(bundle, media_type=FHIR_JSON)
    code = 202 if status.status == "in-progress" else 200
    headers = {"Retry-After": "5"} if code == 202 else None
    return JSONResponse(status.model_dump(mode="json", by_alias=True), code, headers=headers)


@router.get(
    "/api/v1/imaging-analyses/{analysis_id}/heatmaps/{number}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the heatmap over a thumbnail"},
        **client_responses({}, {404: f"{NO_SUCH_ANALYSIS} or heatmap"}),
    },
)
def read_heatmap(
    analysis_id: AnalysisId,
    number: Annotated[int, Path(ge=0, le=10_000)],
    *,
    caller: ClientCaller,
    session: DbSession,
    audit: RequestAuditDep,
) -> Response:
    """The heatmap PNG of the analysis's image ``number`` (0-based)."""
    stored, results = _load(session, analysis_id)
    images = repository.images_of(session, [r.id for r in results])
    flat = [img for r in results for img in images.get(r.id, [])]
    png = flat[number].heatmap_png if number < len(flat) else None
    audit.record(
        action="R",
        event_type="imaging.heatmap.read",
        outcome=Outcome.SUCCESS if png else Outcome.MINOR_FAILURE,
        agent_who=caller.iss,
        patient_id=stored.patient_ref,
        entities=[{"type": "ImagingRequest", "id": stored.id}],
        details={"image": number},
    )
    if png is None:
        raise NotFoundError("no such heatmap")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


# ------------------------------------------------------------------ PACS notifications


def _pacs_caller(request: Request) -> str:
    """The PACS, authenticated by the configured notification token (bare 401 otherwise)."""
    settings = request.app.state.settings
    expected = settings.imaging_service.notify_token
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if (
        expected is None
        or not given
        or not hmac.compare_digest(given.encode(), expected.get_secret_value().encode())
    ):
        route = request.scope.get("route")
        request_audit(request).refused(
            action="E",
            event_type="auth.rejected",
            reason="PACS notification token missing or wrong"
            if expected is not None
            else "PACS notifications are not configured",
            agent_who="pacs",
            agent_type="system",
            details={"route": getattr(route, "path", None)},
        )
        raise AuthenticationError("PACS notification refused")
    return "pacs"


@router.post(
    "/api/v1/imaging/pacs-notifications",
    status_code=202,
    responses={
        202: {"description": "the study's analysis is enqueued (or was already)"},
        401: {"description": "notification token missing or wrong (no body)"},
        503: {"description": "OperationOutcome: no model or no PACS URL configured"},
    },
)
def pacs_notification(
    *,
    agent: Annotated[str, Depends(_pacs_caller)],
    body: Annotated[bytes, Depends(_raw_body)],
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    audit: RequestAuditDep,
) -> Any:
    """A stable study in the PACS: enqueue its analysis now, before anyone opens the chart."""
    try:
        note = PacsNotification.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise BadRequestError("invalid PACS notification (studyUid required)") from exc
    runtime = _runtime(request)
    model = _model_or_audited_refusal(runtime, audit, agent)
    endpoint = settings.imaging_service.pacs_dicomweb_url
    if endpoint is None:
        raise OncoCDSError("ONCOCDS_IMAGING_SERVICE__PACS_DICOMWEB_URL is not configured")
    ref = ImageReference(kind="dicomweb-study", endpoint=endpoint, study_uid=note.study_uid)
    results = ensure_results(session, model, [ref], patient_ref=None, vault=runtime.tokens)
    stored = create_request(session, results, patient_ref=None, origin="pacs", agent=agent)
    session.commit()
    audit.record(
        action="C",
        event_type="imaging.request",
        event_subtype="pacs",
        agent_who=agent,
        agent_type="system",
        entities=[
            {"type": "ImagingRequest", "id": stored.id},
            {"type": "ImagingResult", "id": results[0].id},
        ],
        details={"study_uid": note.study_uid, "status": results[0].status},
    )
    return JSONResponse(
        {"id": stored.id, "resultId": results[0].id, "status": results[0].status},
        status_code=202,
    )


# ------------------------------------------------------------------ model card


@router.get(
    MODEL_CARD_PATH,
    response_class=Response,
    responses={
        200: {"content": {"text/markdown": {}}, "description": "the installed model's card"},
    },
)
def model_card(request: Request) -> Response:
    """The installed bundle's model card (``docs/README.md``): no patient data."""
    from inference.imaging.bundle import MODEL_CARD

    model = _runtime(request).model
    if model is None:
        text = "No imaging model bundle is installed (ONCOCDS_IMAGING__BUNDLE_PATH).\n"
    else:
        text = (model.path / MODEL_CARD).read_text(encoding="utf-8")
    return Response(text, media_type="text/markdown; charset=utf-8")


# ------------------------------------------------------------------ installation


def install_imaging(app: FastAPI, settings: Settings, *, offer_service: bool) -> ImagingRuntime:
    """Verify the bundle (once, at start-up), keep the runtime on ``app.state.imaging``, add
    the readiness probe, and offer ``histopathology-ai`` when a verified bundle is installed."""
    from cds_service.cdshooks.services import histopathology_ai

    runtime = ImagingRuntime.start(settings)
    app.state.imaging = runtime
    app.state.readiness_probes["imaging"] = runtime.probe
    app.state.report_imaging = section_provider(runtime)
    if offer_service and runtime.model is not None:
        app.state.cds_hooks.registry.register(histopathology_ai.definition(runtime))
    return runtime
