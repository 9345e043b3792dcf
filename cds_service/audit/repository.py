"""The SQL of checkpoints, sealing, verification and proofs (``audit_checkpoints`` and reads of
``audit_records``). Appending records is :class:`cds_service.audit.service.AuditTrail`'s alone.

Functions take a ``Connection`` when they run inside the caller's transaction (sealing holds one
under its lock) and an ``Engine`` when they are a read of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Connection, Engine, func, insert, select, text

from cds_service.audit.chain import GENESIS_HASH
from cds_service.audit.tree_head import CheckpointInfo
from cds_service.errors import ConflictError
from cds_service.models.audit import AuditRecord
from cds_service.models.audit_checkpoint import AuditCheckpoint

#: Separate from the append lock: sealing never blocks writers.
_CHECKPOINT_LOCK_KEY: Final = 0x0C0DA0D2


def list_checkpoints(conn: Connection) -> list[CheckpointInfo]:
    rows = conn.execute(select(AuditCheckpoint.__table__).order_by(AuditCheckpoint.first_seq))
    return [CheckpointInfo.from_row(r) for r in rows]


def last_checkpoint(engine: Engine) -> CheckpointInfo | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(AuditCheckpoint.__table__).order_by(AuditCheckpoint.last_seq.desc()).limit(1)
        ).first()
    return CheckpointInfo.from_row(row) if row else None


def checkpoints_covering(engine: Engine, to_seq: int) -> list[CheckpointInfo]:
    """The checkpoints that seal records up to and including ``to_seq``."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditCheckpoint.__table__)
            .where(AuditCheckpoint.first_seq <= to_seq)
            .order_by(AuditCheckpoint.first_seq)
        )
        return [CheckpointInfo.from_row(r) for r in rows]


def checkpoint_sealing(engine: Engine, seq: int) -> CheckpointInfo | None:
    """The checkpoint whose range holds record ``seq`` (None when it is not sealed yet)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(AuditCheckpoint.__table__).where(
                AuditCheckpoint.first_seq <= seq, AuditCheckpoint.last_seq >= seq
            )
        ).first()
    return CheckpointInfo.from_row(row) if row else None


def lock_sealing(conn: Connection) -> None:
    """Serialise sealers for this transaction (PostgreSQL advisory lock; SQLite: the unique
    constraint makes a lost race an IntegrityError instead)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHECKPOINT_LOCK_KEY})


def sealed_to(conn: Connection) -> int | None:
    """The last record seq any checkpoint seals."""
    value = conn.execute(select(func.max(AuditCheckpoint.last_seq))).scalar()
    return None if value is None else int(value)


def last_record_hash_sealed_at(conn: Connection, last_seq: int) -> str:
    """The signed last record hash of the checkpoint ending at ``last_seq``."""
    return str(
        conn.execute(
            select(AuditCheckpoint.last_record_hash).where(AuditCheckpoint.last_seq == last_seq)
        ).scalar_one()
    )


def insert_checkpoint(conn: Connection, values: Mapping[str, Any]) -> int:
    """Insert a checkpoint row; its id."""
    new_id = conn.execute(
        insert(AuditCheckpoint).returning(AuditCheckpoint.id), dict(values)
    ).scalar_one()
    return int(new_id)


def seq_bounds(conn: Connection) -> tuple[int | None, int | None]:
    """The oldest and newest record seq present (None, None for an empty trail)."""
    min_seq = conn.execute(select(func.min(AuditRecord.seq))).scalar()
    max_seq = conn.execute(select(func.max(AuditRecord.seq))).scalar()
    return min_seq, max_seq


def record_hash_at(conn: Connection, seq: int) -> str | None:
    """The record hash of record ``seq`` (None when it is not there)."""
    value = conn.execute(
        select(AuditRecord.record_hash).where(AuditRecord.seq == seq)
    ).scalar_one_or_none()
    return None if value is None else str(value)


def hash_before(conn: Connection, seq: int) -> str:
    """The chain hash a record at ``seq`` must link to (genesis, a record, or an archive anchor).

    Raises:
        ConflictError: the records before ``seq`` are gone and no checkpoint anchors them.
    """
    if seq == 1:
        return GENESIS_HASH
    prev = record_hash_at(conn, seq - 1)
    if prev is not None:
        return prev
    anchor = conn.execute(
        select(AuditCheckpoint.last_record_hash).where(AuditCheckpoint.last_seq == seq - 1)
    ).scalar_one_or_none()
    if anchor is None:
        raise ConflictError(f"records before seq {seq} are missing and no checkpoint anchors them")
    return str(anchor)


def record_by_id(engine: Engine, record_id: str) -> dict[str, Any] | None:
    """Every column of one audit record."""
    with engine.connect() as conn:
        row = conn.execute(select(AuditRecord.__table__).where(AuditRecord.id == record_id)).first()
    return dict(row._mapping) if row is not None else None


def record_hashes(engine: Engine, first_seq: int, last_seq: int) -> list[str]:
    """The record hashes of ``first_seq..last_seq``, in chain order."""
    with engine.connect() as conn:
        return [
            str(h)
            for h in conn.execute(
                select(AuditRecord.record_hash)
                .where(AuditRecord.seq >= first_seq, AuditRecord.seq <= last_seq)
                .order_by(AuditRecord.seq)
            ).scalars()
        ]
