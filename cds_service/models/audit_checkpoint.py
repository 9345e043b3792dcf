"""Signed checkpoints of the audit trail: RFC 6962 Merkle tree heads over batches of records.

Kept apart from ``audit_records`` (the issue: "stored separately and exportable"). A checkpoint
seals the records ``first_seq..last_seq``; its ``root_hash`` is the Merkle tree head over their
``record_hash`` values and ``signature`` is Ed25519 over the canonical tree-head statement
(``cds_service.audit.checkpoints``). On PostgreSQL the table refuses UPDATE, DELETE and
TRUNCATE (migration 2026_11_23_0400); checkpoints are never removed, not even by archiving:
they are the anchors an archived chain is verified against.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cds_service.db.base import Base

_BIGINT = BigInteger().with_variant(Integer(), "sqlite")


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    #: First and last ``audit_records.seq`` sealed by this checkpoint (inclusive).
    first_seq: Mapped[int] = mapped_column(_BIGINT, unique=True)
    last_seq: Mapped[int] = mapped_column(_BIGINT, unique=True)
    #: Number of leaves (``last_seq - first_seq + 1``), RFC 6962 tree size.
    tree_size: Mapped[int] = mapped_column(_BIGINT)
    #: Hex SHA-256 Merkle tree head over the batch.
    root_hash: Mapped[str] = mapped_column(String(64))
    #: ``record_hash`` of record ``last_seq``: the chain anchor once older records are archived.
    last_record_hash: Mapped[str] = mapped_column(String(64))
    #: Base64url Ed25519 signature over the canonical tree-head statement.
    signature: Mapped[str] = mapped_column(String(128))
    #: First 16 hex digits of SHA-256 over the raw public key.
    key_id: Mapped[str] = mapped_column(String(32))
    created: Mapped[datetime]
