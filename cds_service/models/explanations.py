"""Plain-language explanations (issue #16): one row per subject and cache key.

A row is created ``pending`` with its input (the structured findings the model is given: no
names, identifiers or dates of the patient) when an explanation is asked for; the ``llm.explain``
job fills ``content`` and sets ``ready``. ``cache_key`` = sha256 of the input hash, the prompt
version and the model with its digest: a row whose key is already ready elsewhere is filled by
copying (``cached``), never generated again. The counters feed ``oncocds llm stats``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cds_service.db.base import Base, DocumentJSON, JSONType

SUBJECT_KINDS = ("analysis", "image")
STATUSES = ("pending", "ready")
SOURCES = ("model", "template")


class Explanation(Base):
    __tablename__ = "explanations"
    __table_args__ = (
        CheckConstraint("subject_kind IN ('analysis','image')", name="subject_kind"),
        CheckConstraint("kind IN ('genomic','histopathology')", name="kind"),
        CheckConstraint("status IN ('pending','ready')", name="status"),
        CheckConstraint("source IS NULL OR source IN ('model','template')", name="source"),
        UniqueConstraint("subject_kind", "subject_id", "cache_key"),
        Index("ix_explanations_cache_key_status", "cache_key", "status"),
        Index("ix_explanations_created", "created"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    #: The analysis id, or the imaging result's id: an identifier, never clinical content.
    subject_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    cache_key: Mapped[str] = mapped_column(String(64))
    input_hash: Mapped[str] = mapped_column(String(64))
    prompt_version: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    model_digest: Mapped[str | None] = mapped_column(String(100))
    #: The findings document the model is given (``inference.llm.findings``).
    input: Mapped[dict[str, Any]] = mapped_column(DocumentJSON)
    status: Mapped[str] = mapped_column(String(16))
    #: ``model`` (a grounded, schema-valid model text) or ``template`` (the fallback).
    source: Mapped[str | None] = mapped_column(String(16))
    content: Mapped[dict[str, Any] | None] = mapped_column(DocumentJSON)
    #: Why the template replaced the model (a failure category or the grounding problems).
    fallback_reason: Mapped[str | None] = mapped_column(String(512))
    grounding_problems: Mapped[list[str]] = mapped_column(JSONType, default=list)
    generations: Mapped[int] = mapped_column(Integer, default=0)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    grounding_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    eval_count: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime]
    completed: Mapped[datetime | None]
