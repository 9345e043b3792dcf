"""Imaging analyses (issue #15): what was asked for, what the model said, per model version.

- :class:`ImagingResult` is one *source* (a DICOMweb study, a FHIR DocumentReference/Media, an
  uploaded file) analysed by one bundle: unique per ``(source_key, bundle_sha256)``, so a chart
  opened again, a repeated API call or a second PACS notification reuses it instead of running
  the model again. Its ``status`` follows the job that fills it; ``error`` is a PHI-free reason.
- :class:`ImagingImage` is one analysed image of a result (a study may hold several): the
  :meth:`inference.imaging.results.ImageAnalysis.to_json` document, the heatmap PNG, and the
  identifiers (UIDs, attachment sha256, the FHIR resource it is derived from).
- :class:`ImagingRequest` is one request (API, upload, chart open, PACS notification): the
  patient reference, who asked, and the results it covers. Its id is the public analysis id
  (``/api/v1/imaging-analyses/{id}``).

Patients are held by reference (``Patient/123``); no pixels of a fetched image are kept, only
the bytes of an upload until its job has read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cds_service.db.base import Base, DocumentJSON, JSONType

RESULT_STATUSES = ("pending", "running", "done", "failed")
REQUEST_ORIGINS = ("api", "upload", "cds-hook", "pacs")


class ImagingResult(Base):
    __tablename__ = "imaging_results"
    __table_args__ = (
        UniqueConstraint("source_key", "bundle_sha256"),
        CheckConstraint("status IN ('pending','running','done','failed')", name="status"),
        Index("ix_imaging_results_patient_ref", "patient_ref"),
        Index("ix_imaging_results_alias_key", "alias_key", "bundle_sha256", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: ``dicom-study:<uid>``, ``fhir:<host>/<Type>/<id>``, ``sha256:<hex>`` (uploads).
    source_key: Mapped[str] = mapped_column(String(300))
    #: The FHIR key (``fhir:<host>/ImagingStudy/<id>``) of a row re-keyed by its study UID once
    #: the job read it: asking either way finds this row (:func:`repository.adopt_study_uid`).
    alias_key: Mapped[str | None] = mapped_column(String(300))
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(128))
    patient_ref: Mapped[str | None] = mapped_column(String(256))
    #: What the job needs to fetch the source again (identifiers and URLs, never tokens).
    reference: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(512))
    job_id: Mapped[str | None] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime]
    updated: Mapped[datetime]
    #: An upload's bytes and declared type, kept until its job has decoded them.
    upload: Mapped[bytes | None] = mapped_column(LargeBinary)
    upload_type: Mapped[str | None] = mapped_column(String(64))


class ImagingImage(Base):
    __tablename__ = "imaging_images"
    __table_args__ = (
        UniqueConstraint("result_id", "position"),
        Index("ix_imaging_images_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("imaging_results.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    #: ``ImagingStudy/…``, ``DocumentReference/…``, ``Media/…`` or ``None`` (uploads).
    derived_from: Mapped[str | None] = mapped_column(String(256))
    study_uid: Mapped[str | None] = mapped_column(String(64))
    series_uid: Mapped[str | None] = mapped_column(String(64))
    instance_uid: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    #: Copied from the analysis for cards, which read these columns and never the document.
    positive_fraction: Mapped[float | None] = mapped_column(Float)
    max_probability: Mapped[float | None] = mapped_column(Float)
    analysis: Mapped[dict[str, Any]] = mapped_column(DocumentJSON)
    heatmap_png: Mapped[bytes | None] = mapped_column(LargeBinary)


class ImagingRequest(Base):
    __tablename__ = "imaging_requests"
    __table_args__ = (
        CheckConstraint("origin IN ('api','upload','cds-hook','pacs')", name="origin"),
        Index("ix_imaging_requests_patient_created", "patient_ref", "created"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created: Mapped[datetime]
    patient_ref: Mapped[str | None] = mapped_column(String(256))
    origin: Mapped[str] = mapped_column(String(16))
    #: The client ``iss``, staff subject or ``pacs`` that asked.
    agent: Mapped[str] = mapped_column(String(256))
    result_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: The stored report (``analyses`` row) posted by write-back, once built.
    writeback_analysis_id: Mapped[str | None] = mapped_column(String(36))
