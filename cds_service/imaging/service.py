"""The imaging service: which model is installed, what a reference is, enqueueing analyses.

Nothing here runs the model or fetches an image: a request (API, upload, chart open, PACS
notification) stores one :class:`~cds_service.models.imaging.ImagingResult` per source and
bundle (or finds the one stored before) and enqueues the ``imaging.analyse`` job
(:mod:`cds_service.imaging.jobs`) in the same transaction (the jobs' transactional outbox). The
job, in a worker, fetches, analyses and stores.

**Model.** ``ONCOCDS_IMAGING__BUNDLE_PATH`` names the bundle; it is verified once at start-up
(:func:`inference.imaging.bundle.verify_bundle`, bytes and JSON only, no torch) so that the
API knows the bundle's sha256 (the model version results are keyed by) and whether to offer
the ``histopathology-ai`` CDS service at all. Workers load and verify it again for the
predictor, once per process (``worker_resource("imaging.predictor")``).

**Credentials (decision).** A job payload holds identifiers only, never a token. A client's
token (``fhirAuthorization``, or the one given to ``POST /api/v1/imaging-analyses``) is kept in
this process's memory (:class:`TokenVault`) for its lifetime and used by the in-process
worker; a job run elsewhere or after a restart uses the configured PACS/FHIR credential
(``ONCOCDS_IMAGING_SERVICE__PACS_*`` / ``__FHIR_TOKEN``), and without one the server's 401 fails
the job with a reason ("credential refused"), listed and replayable.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from cds_service.db.base import utcnow
from cds_service.errors import OncoCDSError
from cds_service.imaging import repository
from cds_service.models.imaging import ImagingRequest, ImagingResult
from cds_service.settings import Settings

log = logging.getLogger(__name__)

JOB_KIND: Final = "imaging.analyse"
#: AI Transparency labelling every consumer repeats (cards, report page, FHIR narrative).
AI_NOTICE: Final = "AI-generated; requires pathologist review."


class ImagingUnavailableError(OncoCDSError):
    """No verified model bundle is installed: imaging analyses cannot be accepted."""

    status_code = 503
    code = "transient"


def bundle_path(settings: Settings) -> Path | None:
    """``ONCOCDS_IMAGING__BUNDLE_PATH`` (the ``imaging`` settings section), if set."""
    section = getattr(settings, "imaging", None)
    path = getattr(section, "bundle_path", None)
    return Path(path) if path else None


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """The verified bundle's identity, as the API needs it (no torch, no weights)."""

    name: str
    version: str
    bundle_sha256: str
    path: Path
    threshold: float

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


class TokenVault:
    """Client tokens for pending jobs, in this process's memory only, with an expiry.

    Never persisted, never logged; a job that finds none falls back to the configured
    credential (module docstring).
    """

    def __init__(self, *, max_items: int = 4096) -> None:
        self._items: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._max = max_items

    def put(self, key: str, token: str, *, ttl_s: float) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._items) >= self._max:
                self._items = {k: v for k, v in self._items.items() if v[0] > now}
                if len(self._items) >= self._max:
                    self._items.pop(next(iter(self._items)))
            self._items[key] = (now + ttl_s, token)

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= time.monotonic():
                del self._items[key]
                return None
            return item[1]


#: One vault per process: the in-process worker and the API share it.
TOKENS: Final = TokenVault()


@dataclass(slots=True)
class ImagingRuntime:
    """What the API knows about imaging (``app.state.imaging``), built at start-up."""

    settings: Settings
    model: InstalledModel | None
    #: Why the model is not offered (no bundle configured, or it failed verification).
    problem: str | None
    tokens: TokenVault = field(default_factory=lambda: TOKENS)
    #: The model card summary for report pages, read from the bundle on first use.
    card: Any = None

    @classmethod
    def start(cls, settings: Settings) -> ImagingRuntime:
        from inference.errors import ModelBundleError
        from inference.imaging.bundle import verify_bundle

        path = bundle_path(settings)
        if path is None:
            return cls(settings, None, "no model bundle configured (ONCOCDS_IMAGING__BUNDLE_PATH)")
        try:
            info = verify_bundle(path)
        except ModelBundleError as exc:
            return cls(settings, None, f"model bundle failed verification: {exc.message}")
        except OSError as exc:
            return cls(settings, None, f"model bundle unreadable ({exc.strerror})")
        meta = info.metadata
        model = InstalledModel(
            meta.name, meta.version, info.bundle_sha256, info.path, meta.calibration.threshold
        )
        return cls(settings, model, None)

    def require_model(self) -> InstalledModel:
        if self.model is None:
            raise ImagingUnavailableError(f"imaging analysis unavailable: {self.problem}")
        return self.model

    def probe(self) -> tuple[bool, dict[str, Any]]:
        """Readiness: ready with a model, or without one configured (the histopathology
        service is then simply not offered); not ready when a configured bundle is broken."""
        if self.model is not None:
            return True, {
                "model": self.model.label,
                "bundle_sha256": self.model.bundle_sha256,
                "histopathology_ai": "offered",
            }
        configured = bundle_path(self.settings) is not None
        return (not configured), {"histopathology_ai": "not offered", "reason": self.problem}


# --------------------------------------------------------------------------- references


@dataclass(frozen=True, slots=True)
class ImageReference:
    """What to analyse: a DICOMweb study, a FHIR DocumentReference/Media, or an upload.

    ``as_json`` is what the result row keeps for the job (identifiers and URLs, no token).
    """

    kind: str  # "dicomweb-study" | "fhir-resource" | "upload"
    endpoint: str | None = None  # DICOMweb root or FHIR base
    study_uid: str | None = None
    resource: str | None = None  # DocumentReference/7, Media/3, ImagingStudy/5
    sha256: str | None = None
    content_type: str | None = None

    @property
    def source_key(self) -> str:
        if self.kind == "dicomweb-study":
            return f"dicom-study:{self.study_uid}"
        if self.kind == "upload":
            return f"sha256:{self.sha256}"
        split = urlsplit(self.endpoint or "")
        key = f"fhir:{split.netloc}{split.path.rstrip('/')}/{self.resource}"
        if len(key) > 300:
            key = "fhir-sha256:" + hashlib.sha256(key.encode()).hexdigest()
        return key

    @property
    def derived_from(self) -> str | None:
        return self.resource

    def as_json(self) -> dict[str, Any]:
        data = {
            "kind": self.kind,
            "endpoint": self.endpoint,
            "studyUid": self.study_uid,
            "resource": self.resource,
            "sha256": self.sha256,
            "contentType": self.content_type,
        }
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageReference:
        return cls(
            kind=str(data["kind"]),
            endpoint=data.get("endpoint"),
            study_uid=data.get("studyUid"),
            resource=data.get("resource"),
            sha256=data.get("sha256"),
            content_type=data.get("contentType"),
        )


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    content_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def reference(self, derived_from: str | None = None) -> ImageReference:
        return ImageReference(
            kind="upload",
            sha256=self.sha256,
            content_type=self.content_type,
            resource=derived_from,
        )


def job_key(result_id: str) -> str:
    """One job per result (idempotent: enqueueing again returns the existing job)."""
    return f"imaging:{result_id}"


def ensure_results(
    session: Session,
    model: InstalledModel,
    references: Sequence[ImageReference],
    *,
    patient_ref: str | None,
    uploads: Mapping[str, Upload] | None = None,
    token: str | None = None,
    token_ttl_s: float = 3600.0,
    vault: TokenVault = TOKENS,
) -> list[ImagingResult]:
    """The result row of every reference for the installed bundle: the stored one when there
    is one (whatever its status: done is reused, pending/running is under way, failed waits
    for a replay), else a new ``pending`` row with its job enqueued. Flushes only: the rows
    and the job commit with the caller's transaction.
    """
    from cds_service.jobs import enqueue

    known = repository.results_for(session, (r.source_key for r in references), model.bundle_sha256)
    results: list[ImagingResult] = []
    for ref in references:
        row = known.get(ref.source_key)
        if row is None:
            now = utcnow()
            upload = (uploads or {}).get(ref.source_key)
            row = repository.add_result(
                session,
                ImagingResult(
                    id=str(uuid.uuid4()),
                    source_key=ref.source_key,
                    bundle_sha256=model.bundle_sha256,
                    model_version=model.label[:128],
                    patient_ref=patient_ref,
                    reference=ref.as_json(),
                    status="pending",
                    error=None,
                    job_id=None,
                    attempts=0,
                    created=now,
                    updated=now,
                    upload=upload.data if upload else None,
                    upload_type=upload.content_type if upload else None,
                ),
            )
            if row.job_id is None:
                job = enqueue(
                    session, kind=JOB_KIND, key=job_key(row.id), payload={"result_id": row.id}
                )
                row.job_id = str(job.id)
            known[ref.source_key] = row
        elif row.patient_ref is None and patient_ref is not None:
            row.patient_ref = patient_ref  # a PACS-announced study, now seen in a chart
        if token is not None and row.status in {"pending", "running", "failed"}:
            vault.put(row.id, token, ttl_s=token_ttl_s)
        results.append(row)
    session.flush()
    return results


def create_request(
    session: Session,
    results: Iterable[ImagingResult],
    *,
    patient_ref: str | None,
    origin: str,
    agent: str,
) -> ImagingRequest:
    return repository.add_request(
        session,
        ImagingRequest(
            id=str(uuid.uuid4()),
            created=utcnow(),
            patient_ref=patient_ref,
            origin=origin,
            agent=agent[:256],
            result_ids=[r.id for r in results],
            writeback_analysis_id=None,
        ),
    )


def request_status(results: Sequence[ImagingResult]) -> str:
    """``done`` when every result is, ``failed`` when any failed and none is under way,
    else ``in-progress``."""
    statuses = {r.status for r in results}
    if statuses <= {"done"}:
        return "done"
    if statuses & {"pending", "running"}:
        return "in-progress"
    return "failed"
