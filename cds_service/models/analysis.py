"""Stored analyses (interpretation + report Bundle) and their write-back jobs.

An analysis row keeps what is needed to re-render every output later (cards, FHIR, the report
page) without re-running the interpreter: the interpretation JSON (``inference.genomics.serialize``)
and the transaction Bundle exactly as built. The patient is held by reference only
(``Patient/123``), never demographics. Write-back jobs hold identifiers and error categories,
never PHI or tokens.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cds_service.db.base import Base, DocumentJSON, JSONType

SOURCE_KINDS = ("fhir", "vcf", "text", "hl7", "cds-hook", "imaging")
WRITEBACK_STATUSES = ("pending", "done", "failed")


class Analysis(Base):
    __tablename__ = "analyses"
    __table_args__ = (
        CheckConstraint(
            "source_kind IN ('fhir','vcf','text','hl7','cds-hook','imaging')", name="source_kind"
        ),
        Index("ix_analyses_patient_created", "patient_ref", "created"),
    )

    #: UUID (string form), the public identifier used in URLs.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created: Mapped[datetime]
    #: ``Patient/123``: a FHIR reference or lab identifier, never a name.
    patient_ref: Mapped[str] = mapped_column(String(256))
    source_kind: Mapped[str] = mapped_column(String(16))
    #: OncoTree code of the tumour type, when known.
    tumour_type_code: Mapped[str | None] = mapped_column(String(32))
    kb_version: Mapped[str] = mapped_column(String(128))
    oncocds_version: Mapped[str] = mapped_column(String(64))
    interpretation: Mapped[dict[str, Any]] = mapped_column(DocumentJSON)
    report_bundle: Mapped[dict[str, Any]] = mapped_column(DocumentJSON)


class WritebackJob(Base):
    __tablename__ = "writeback_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('pending','done','failed')", name="status"),
        Index("ix_writeback_jobs_status_next", "status", "next_attempt"),
        Index("ix_writeback_jobs_analysis_id", "analysis_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    analysis_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("analyses.id", ondelete="CASCADE")
    )
    fhir_base_url: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime]
    updated: Mapped[datetime]
    next_attempt: Mapped[datetime | None]
    #: Category and HTTP status of the last failure (e.g. ``http 503``); never PHI or tokens.
    last_error: Mapped[str | None] = mapped_column(String(512))
    #: ``Observation/123/_history/1`` … from the transaction-response entries' ``location``.
    response_locations: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: Who holds (or last held) the round's claim, whose lease is ``next_attempt``:
    #: ``round:<background job id>:<attempt>`` for a ``writeback.round`` job, else the runner's
    #: name (``sweep``, ``cli``). A later attempt of the same round job may take the claim over.
    claimed_by: Mapped[str | None] = mapped_column(String(160), default=None)
