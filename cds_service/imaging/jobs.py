"""Job kind ``imaging.analyse``: fetch a source's images, run the model, store, audit.

One job per :class:`~cds_service.models.imaging.ImagingResult` (payload ``{"result_id": …}``,
identifiers only). The handler:

1. reads the result row (its reference, an upload's bytes) and marks it ``running``;
2. fetches through :mod:`integrations.imaging` (allowlist, content types, byte/pixel limits,
   decompression-bomb guard, timeouts all apply there): a DICOMweb study with
   :meth:`DicomWebClient.read_study`, a DocumentReference/Media read from its FHIR server and
   each image attachment with :class:`AttachmentReader`, an upload decoded from its bytes;
3. analyses each image with the worker's predictor (``ctx.resource("imaging.predictor")``,
   loaded and checksum-verified once per worker process by :func:`load_predictor`); an image
   whose bytes this bundle analysed before (same sha256) reuses that analysis;
4. stores the images and marks the result ``done`` (an upload's bytes are dropped);
5. audits every fetch (``imaging.fetch``: patient, study/series/instance UIDs, host, bytes,
   outcome; a refused off-allowlist endpoint too) and every classification
   (``imaging.classify``: patient, UIDs, model version, outcome).

Failures (issue #15 §7): an :class:`ImagingError` that may pass (PACS timeout, connection cut,
5xx, truncated data) is raised again so the executor retries with backoff; the result shows
the PHI-free reason meanwhile and ``failed`` after the last attempt (the job is then dead,
listed and replayable). Anything that will not pass (too large, unsupported, off the allowlist,
refused credential, a different model installed) is a :class:`PermanentJobError` whose message
says why.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from cds_service.audit import AuditTrail
from cds_service.audit.service import Outcome
from cds_service.db.base import utcnow
from cds_service.imaging import repository
from cds_service.imaging.report import enqueue_imaging_writeback
from cds_service.imaging.service import (
    JOB_KIND,
    TOKENS,
    ImageReference,
    bundle_path,
)
from cds_service.jobs import (
    JobContext,
    PermanentJobError,
    RetryableJobError,
    job_kind,
    worker_resource,
)
from cds_service.models.imaging import ImagingImage, ImagingResult
from cds_service.settings import Settings
from integrations.imaging import (
    AttachmentReader,
    BasicCredential,
    BearerToken,
    CorruptImageError,
    Credential,
    DicomWebClient,
    EndpointAllowlist,
    FetchedImage,
    FetchLimits,
    GuardedHttp,
    ImageNotAllowedError,
    ImagingError,
    image_attachments,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 5
_FHIR_JSON: Final = frozenset({"application/fhir+json", "application/json"})


# ------------------------------------------------------------------ per-process resources


def _bundle_installed(settings: Settings) -> bool:
    return bundle_path(settings) is not None


# Loaded when a worker serving the imaging queue starts (issue #15: "never on the request
# path"), not by the first job; only when a bundle is configured.
@worker_resource("imaging.predictor", warm_for=("imaging",), warm_if=_bundle_installed)
def load_predictor(settings: Settings) -> Any:
    """The bundle's predictor, verified and loaded once per worker process."""
    from inference.imaging.predictor import Predictor

    path = bundle_path(settings)
    if path is None:
        raise PermanentJobError("no model bundle configured (ONCOCDS_IMAGING__BUNDLE_PATH)")
    from inference.errors import ModelBundleError

    section = getattr(settings, "imaging", None)
    threads = getattr(section, "threads", None)
    try:
        return Predictor.load(path, device="cpu", threads=threads)
    except ModelBundleError as exc:
        raise PermanentJobError(f"model bundle refused: {exc.message}") from exc


def _limits(settings: Settings) -> FetchLimits:
    cfg = settings.imaging_service
    return FetchLimits(
        max_bytes=cfg.max_fetch_bytes,
        max_pixels=cfg.max_pixels,
        read_timeout_s=cfg.request_timeout_s,
        deadline_s=cfg.fetch_deadline_s,
    )


def guarded_http(settings: Settings) -> GuardedHttp:
    return GuardedHttp(EndpointAllowlist(settings.imaging_service.allowlist), _limits(settings))


def _pacs_credential(settings: Settings, client_token: str | None) -> Credential | None:
    if client_token:
        return BearerToken(client_token)
    cfg = settings.imaging_service
    if cfg.pacs_token is not None:
        return BearerToken(cfg.pacs_token.get_secret_value())
    if cfg.pacs_username and cfg.pacs_password is not None:
        return BasicCredential(cfg.pacs_username, cfg.pacs_password.get_secret_value())
    return None


def _fhir_credential(settings: Settings, client_token: str | None) -> Credential | None:
    if client_token:
        return BearerToken(client_token)
    token = settings.imaging_service.fhir_token
    return BearerToken(token.get_secret_value()) if token is not None else None


# ------------------------------------------------------------------ fetching


@dataclass(frozen=True, slots=True)
class Labelled:
    image: FetchedImage
    label: str
    derived_from: str | None


def _audit_trail(ctx: JobContext) -> AuditTrail:
    engine = ctx.session_factory.kw["bind"]
    return AuditTrail(engine, source_observer=ctx.settings.instance_id)


class _Fetcher:
    """Fetches one reference's images, auditing each fetch (and a refused one)."""

    def __init__(
        self, ctx: JobContext, audit: AuditTrail, result: ImagingResult, token: str | None
    ) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx.settings
        self.audit = audit
        self.result = result
        self.token = token

    def _audit(
        self,
        ref: ImageReference,
        *,
        outcome: Outcome,
        image: FetchedImage | None = None,
        reason: str | None = None,
    ) -> None:
        record = image.record if image is not None else None
        host = record.endpoint_host if record is not None else _host(ref.endpoint)
        self.audit.record(
            action="R",
            event_type="imaging.fetch",
            event_subtype=ref.kind,
            outcome=outcome,
            outcome_desc=reason,
            agent_who="oncocds-imaging",
            agent_type="system",
            patient_id=self.result.patient_ref,
            entities=[
                {"type": "ImagingResult", "id": self.result.id},
                {"type": "Job", "id": str(self.ctx.job_id)},
            ],
            details={
                "source": record.source if record else ref.kind,
                "host": host,
                "study_uid": (record.study_uid if record else None) or ref.study_uid,
                "series_uid": record.series_uid if record else None,
                "instance_uids": list(record.instance_uids)[:50] if record else [],
                "reference": (record.reference if record else None) or ref.resource,
                "bytes": record.byte_count if record else None,
                "sha256": record.sha256 if record else None,
                "attempt": self.ctx.attempt,
            },
        )

    def fetch(self, ref: ImageReference) -> list[Labelled]:
        try:
            images = list(self._fetch(ref))
        except ImagingError as exc:
            self._audit(
                ref,
                outcome=Outcome.MINOR_FAILURE if exc.transient else Outcome.SERIOUS_FAILURE,
                reason=exc.reason,
            )
            raise
        for item in images:
            self._audit(ref, outcome=Outcome.SUCCESS, image=item.image)
        return images

    def _fetch(self, ref: ImageReference) -> Iterator[Labelled]:
        if ref.kind == "upload":
            yield from self._upload(ref)
            return
        with guarded_http(self.settings) as http:
            if ref.kind == "dicomweb-study":
                yield from self._study(ref, http)
            elif ref.kind == "fhir-resource":
                yield from self._attachments(ref, http)
            else:
                raise PermanentJobError(f"unknown reference kind {ref.kind!r}")

    def _upload(self, ref: ImageReference) -> Iterator[Labelled]:
        data, content_type = self.result.upload, self.result.upload_type
        if data is None or content_type is None:
            raise PermanentJobError("the uploaded image is no longer stored")
        # The attachment reader decodes inline data under the same limits as fetched data.
        with GuardedHttp(EndpointAllowlist([]), _limits(self.settings)) as http:
            image = AttachmentReader(http).read(
                {"contentType": content_type, "data": base64.b64encode(data).decode("ascii")},
                location="upload",
            )
        yield Labelled(image, "Uploaded image", ref.resource)

    def _study(self, ref: ImageReference, http: GuardedHttp) -> Iterator[Labelled]:
        endpoint = ref.endpoint or self.settings.imaging_service.pacs_dicomweb_url
        if endpoint is None or ref.study_uid is None:
            raise PermanentJobError("study reference without a DICOMweb endpoint or UID")
        credential = _pacs_credential(self.settings, self.token)
        client = DicomWebClient(endpoint, http, credential=credential)
        spacing = self.ctx.resource("imaging.predictor").info.metadata.preprocessing
        for image in client.read_study(ref.study_uid, target_spacing_mm=spacing.pixel_spacing_mm):
            rec = image.record
            if image.kind == "wsi-level":
                label = f"Whole-slide image, series …{(rec.series_uid or '')[-12:]}"
            else:
                label = f"DICOM image …{(rec.instance_uids or ('',))[0][-12:]}"
            yield Labelled(image, label, ref.resource)

    def _read_json(self, http: GuardedHttp, url: str, credential: Credential | None) -> Any:
        import orjson

        body = http.get(
            url,
            accept="application/fhir+json",
            allowed_types=_FHIR_JSON,
            budget=http.budget(),
            credential=credential,
        )
        try:
            return orjson.loads(body.content)
        except orjson.JSONDecodeError as exc:
            raise CorruptImageError(f"{body.host} answered unreadable FHIR JSON") from exc

    def _attachments(self, ref: ImageReference, http: GuardedHttp) -> Iterator[Labelled]:
        from cds_service.cdshooks.services.histopathology_ai import references

        if ref.endpoint is None or ref.resource is None:
            raise PermanentJobError("FHIR reference without a server or resource")
        base = ref.endpoint.rstrip("/")
        credential = _fhir_credential(self.settings, self.token)
        resource = self._read_json(http, f"{base}/{ref.resource}", credential)
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind == "ImagingStudy":
            # Its DICOM UID and the DICOMweb Endpoint it names (or the configured PACS).
            endpoints = []
            for item in resource.get("endpoint") or []:
                target = item.get("reference") if isinstance(item, dict) else None
                if isinstance(target, str) and target.startswith("Endpoint/"):
                    endpoints.append(self._read_json(http, f"{base}/{target}", credential))
            found = references(
                [resource, *endpoints],
                fhir_server=None,
                pacs_url=self.settings.imaging_service.pacs_dicomweb_url,
            )
            if not found:
                raise PermanentJobError("ImagingStudy without a DICOM UID or DICOMweb endpoint")
            if found[0].study_uid:
                # One result per study: asked for by UID (PACS) or as ImagingStudy/x (API).
                with self.ctx.session_factory.begin() as session:
                    repository.adopt_study_uid(session, self.result.id, found[0].study_uid)
            yield from self._study(found[0], http)
            return
        if kind not in {"DocumentReference", "Media"}:
            raise PermanentJobError(
                "the reference is not an ImagingStudy, DocumentReference or Media"
            )
        reader = AttachmentReader(http, fhir_base_url=ref.endpoint, credential=credential)
        attachments = image_attachments(resource)
        if not attachments:
            raise PermanentJobError(f"{ref.resource} has no image attachment")
        for location, attachment in attachments:
            image = reader.read(attachment, location=location)
            yield Labelled(image, f"Image attachment {location}", ref.resource)


def _host(url: str | None) -> str | None:
    if not url:
        return None
    from urllib.parse import urlsplit

    return urlsplit(url).hostname


# ------------------------------------------------------------------ the job


def _set_status(
    sessions: sessionmaker[Session], result_id: str, status: str, error: str | None
) -> None:
    with sessions.begin() as session:
        row = repository.get_result(session, result_id)
        if row is not None:
            row.status = status
            row.error = error[:500] if error else None
            row.updated = utcnow()


@job_kind(JOB_KIND, queue="imaging", max_attempts=MAX_ATTEMPTS, time_limit_s=900)
def analyse(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    result_id = str(payload.get("result_id", ""))
    sessions = ctx.session_factory
    with sessions.begin() as session:
        row = repository.get_result(session, result_id)
        if row is None:
            raise PermanentJobError("imaging result not found")
        row.status = "running"
        row.attempts = ctx.attempt
        row.updated = utcnow()
        session.flush()
        session.expunge(row)
    ref = ImageReference.from_json(row.reference)
    audit = _audit_trail(ctx)
    try:
        predictor = ctx.resource("imaging.predictor")
        if predictor.info.bundle_sha256 != row.bundle_sha256:
            raise PermanentJobError(  # noqa: TRY301 - stored as the result's reason below
                "the installed model differs from the one this analysis was requested for"
            )
        fetched = _Fetcher(ctx, audit, row, TOKENS.get(row.id)).fetch(ref)
        images = _analyse_all(ctx, audit, row, predictor, fetched)
    except ImageNotAllowedError as exc:
        _set_status(sessions, result_id, "failed", f"refused: {exc.reason}")
        raise PermanentJobError(f"refused: {exc.reason}") from exc
    except ImagingError as exc:
        last = ctx.attempt >= MAX_ATTEMPTS
        if exc.transient or isinstance(exc, CorruptImageError):
            # Truncated DICOM and PACS timeouts may pass: retried with backoff.
            status = "failed" if last else "pending"
            _set_status(sessions, result_id, status, f"{exc.reason} (attempt {ctx.attempt})")
            raise RetryableJobError(exc.reason) from exc
        _set_status(sessions, result_id, "failed", exc.reason)
        raise PermanentJobError(exc.reason) from exc
    except PermanentJobError as exc:
        _set_status(sessions, result_id, "failed", exc.reason)
        raise
    except Exception:
        last = ctx.attempt >= MAX_ATTEMPTS
        _set_status(
            sessions, result_id, "failed" if last else "pending", "analysis failed (internal)"
        )
        raise
    with sessions.begin() as session:
        repository.replace_images(session, result_id, images)
        stored = repository.get_result(session, result_id)
        assert stored is not None
        stored.status = "done"
        stored.error = None
        stored.upload = None
        stored.updated = utcnow()
        session.flush()
        if ctx.settings.llm.enabled:  # issue 16: explained by its own job, after this commit
            _request_explanations(session, ctx.settings, images)
        # Finished requests of this patient go to the EHR through the existing write-back.
        queued = enqueue_imaging_writeback(session, ctx.settings, stored.patient_ref)
    return {"images": len(images), "writeback": len(queued)}


def _request_explanations(session: Session, settings: Settings, images: list[ImagingImage]) -> None:
    """A pending histopathology explanation and its ``llm.explain`` job per stored image, in
    the caller's transaction (they commit with the images they explain). Flushes only."""
    from cds_service.explanations.service import image_subject, request_for_image
    from inference.imaging.results import ImageAnalysis

    for image in images:
        analysis = ImageAnalysis.from_json(dict(image.analysis))
        request_for_image(session, settings, image_subject(image.id), analysis)


def _analyse_all(
    ctx: JobContext,
    audit: AuditTrail,
    row: ImagingResult,
    predictor: Any,
    fetched: list[Labelled],
) -> list[ImagingImage]:
    from inference.imaging.analysis import analyse_image

    images: list[ImagingImage] = []
    for position, item in enumerate(fetched):
        rec = item.image.record
        reused = None
        if rec.sha256 is not None:
            with ctx.session_factory() as session:
                previous = repository.image_by_sha256(session, rec.sha256, row.bundle_sha256)
                if previous is not None:
                    reused = (dict(previous.analysis), previous.heatmap_png, previous.outcome)
        if reused is not None:
            document, heatmap, outcome = reused
        else:
            analysis = analyse_image(predictor, item.image.pixels, spacing_mm=item.image.spacing_mm)
            document, heatmap, outcome = analysis.to_json(), analysis.heatmap_png, analysis.outcome
        instance = rec.instance_uids[0] if len(rec.instance_uids) == 1 else None
        images.append(
            ImagingImage(
                result_id=row.id,
                position=position,
                label=item.label[:200],
                derived_from=item.derived_from,
                study_uid=rec.study_uid,
                series_uid=rec.series_uid,
                instance_uid=instance,
                sha256=rec.sha256,
                outcome=outcome,
                positive_fraction=document.get("positive_fraction"),
                max_probability=document.get("max_probability"),
                analysis=document,
                heatmap_png=heatmap,
            )
        )
        model = document.get("model", {})
        audit.record(
            action="C",
            event_type="imaging.classify",
            event_subtype=outcome,
            agent_who="oncocds-imaging",
            agent_type="system",
            patient_id=row.patient_ref,
            entities=[
                {"type": "ImagingResult", "id": row.id},
                {"type": "Job", "id": str(ctx.job_id)},
            ],
            details={
                "study_uid": rec.study_uid,
                "series_uid": rec.series_uid,
                "instance_uids": list(rec.instance_uids)[:50],
                "sha256": rec.sha256,
                "model": f"{model.get('name')} {model.get('version')}",
                "bundle_sha256": row.bundle_sha256,
                "outcome": outcome,
                "reused": reused is not None,
                "tiles_tissue": document.get("tiles_tissue"),
            },
        )
    return images
