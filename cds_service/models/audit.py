"""The append-only audit trail, shaped after IHE BALP / FHIR R4 AuditEvent.

Not named ``AuditEvent`` so as not to shadow the FHIR resource (STYLE.md, naming). Each row holds
identifiers only, never clinical payloads. ``record_hash`` = SHA-256 over the previous row's hash
and this row's canonical JSON (``cds_service.audit.chain``); on PostgreSQL a trigger rejects
UPDATE, DELETE and TRUNCATE (migration 2026_11_23_0001), except the controlled archive delete
of migration 2026_11_23_0400 (see ``cds_service.audit.archive``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cds_service.db.base import Base, JSONType


class AuditRecord(Base):
    __tablename__ = "audit_records"
    __table_args__ = (
        CheckConstraint("action IN ('C','R','U','D','E')", name="action"),
        CheckConstraint("outcome IN (0,4,8,12)", name="outcome"),
        Index("ix_audit_records_patient_recorded", "patient_id", "recorded"),
        Index("ix_audit_records_agent_recorded", "agent_who", "recorded"),
        Index("ix_audit_records_recorded", "recorded"),
        Index("ix_audit_records_request_id", "request_id"),
        Index("ix_audit_records_hook_instance", "hook_instance"),
        Index("ix_audit_records_control_id", "control_id"),
        # Keyset pagination of compliance searches runs newest-first on ``seq`` within a filter
        # (migration 2026_11_23_0400): one composite index per selective filter column.
        Index("ix_audit_records_patient_seq", "patient_id", "seq"),
        Index("ix_audit_records_agent_seq", "agent_who", "seq"),
        Index("ix_audit_records_agent_user_seq", "agent_user", "seq"),
        Index("ix_audit_records_event_type_seq", "event_type", "seq"),
        Index("ix_audit_records_outcome_seq", "outcome", "seq"),
    )

    #: Position in the chain: 1, 2, 3 … without gaps, assigned under the append lock.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    #: Public identifier of the record (UUID), what APIs and exports refer to.
    id: Mapped[str] = mapped_column(String(36), unique=True)
    recorded: Mapped[datetime]
    #: FHIR AuditEvent.action: C create, R read, U update, D delete, E execute.
    action: Mapped[str] = mapped_column(String(1))
    #: What happened, e.g. ``cds-hooks.call``, ``rest.read``, ``auth.rejected``, ``hl7.received``.
    event_type: Mapped[str] = mapped_column(String(64))
    event_subtype: Mapped[str | None] = mapped_column(String(64))
    #: FHIR AuditEvent.outcome: 0 success, 4 minor, 8 serious, 12 major failure.
    outcome: Mapped[int] = mapped_column(Integer)
    outcome_desc: Mapped[str | None] = mapped_column(String(512))
    #: ``client`` (CDS client iss / API client), ``user`` (user sub) or ``system``.
    agent_type: Mapped[str] = mapped_column(String(16))
    agent_who: Mapped[str] = mapped_column(String(512))
    #: The user on whose behalf a client acted (CDS Hooks context.userId), if known.
    agent_user: Mapped[str | None] = mapped_column(String(256))
    tenant: Mapped[str | None] = mapped_column(String(256))
    patient_id: Mapped[str | None] = mapped_column(String(256))
    #: Other entities touched: ``[{"type": "DiagnosticReport", "id": "..."}, ...]``.
    entities: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    hook_instance: Mapped[str | None] = mapped_column(String(128))
    #: HL7 v2 MSH-10 message control id.
    control_id: Mapped[str | None] = mapped_column(String(64))
    purpose_of_use: Mapped[str | None] = mapped_column(String(64))
    #: AuditEvent.source.observer: the OncoCDS instance that wrote the record.
    source_observer: Mapped[str] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(128))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    #: Small identifier-only details (latency, counts, reasons). Never clinical payloads.
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64), unique=True)
