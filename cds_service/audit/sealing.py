"""Sealing: signed checkpoints over the records no checkpoint seals yet.

Each batch is checked (sequence, links, content hashes) before it is sealed: a checkpoint must
never bless a chain that is already broken. The root is the RFC 6962 Merkle tree head over the
batch's record hashes (leaf data = the 32 raw bytes of ``record_hash``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from cds_service.audit import merkle, repository
from cds_service.audit.service import AuditTrail
from cds_service.audit.signing import CheckpointSigner
from cds_service.audit.tree_head import CheckpointInfo
from cds_service.db.base import utcnow
from cds_service.errors import ConflictError

log = logging.getLogger(__name__)


def seal(
    engine: Engine, signer: CheckpointSigner, *, max_records: int = 100_000
) -> list[CheckpointInfo]:
    """Create checkpoints for every record no checkpoint seals yet.

    Each batch is checked (sequence, links, content hashes) before it is sealed: a checkpoint
    must never bless a chain that is already broken.

    Returns:
        The new checkpoints (empty when everything was sealed already).

    Raises:
        ConflictError: the unsealed records do not form an intact chain.
    """
    created: list[CheckpointInfo] = []
    while True:
        info = _seal_one(engine, signer, max_records)
        if info is None:
            return created
        created.append(info)


def _seal_one(engine: Engine, signer: CheckpointSigner, max_records: int) -> CheckpointInfo | None:
    try:
        with engine.begin() as conn:
            repository.lock_sealing(conn)
            sealed_to = repository.sealed_to(conn)
            if sealed_to is None:
                start, _ = repository.seq_bounds(conn)
                if start is None:
                    return None
                prev = repository.hash_before(conn, start)
            else:
                start = sealed_to + 1
                prev = repository.last_record_hash_sealed_at(conn, sealed_to)
            trail = AuditTrail(engine, source_observer="sealer")
            leaves: list[bytes] = []
            expected_seq, last_hash = start, prev
            rows = trail.iter_rows(conn, from_seq=start, to_seq=start + max_records - 1)
            with contextlib.closing(rows):
                for row in rows:
                    reason = AuditTrail._check_row(row, expected_seq, last_hash)
                    if reason is not None:
                        raise ConflictError(
                            f"refusing to seal: record seq {row['seq']} breaks the chain ({reason})"
                        )
                    leaves.append(merkle.leaf_hash(bytes.fromhex(row["record_hash"])))
                    expected_seq, last_hash = row["seq"] + 1, row["record_hash"]
            if not leaves:
                return None
            draft = CheckpointInfo(
                id=0,
                first_seq=start,
                last_seq=expected_seq - 1,
                tree_size=len(leaves),
                root_hash=merkle.root_from_leaf_hashes(leaves).hex(),
                last_record_hash=last_hash,
                signature="",
                key_id=signer.key_id,
                created=utcnow(),
            )
            values = {
                name: getattr(draft, name)
                for name in CheckpointInfo.__slots__
                if name not in ("id", "signature")
            }
            values["signature"] = signer.sign(draft.statement())
            new_id = repository.insert_checkpoint(conn, values)
    except IntegrityError:
        # SQLite has no advisory lock: another sealer took this range first. Try again from
        # the new last checkpoint.
        log.info("checkpoint race lost; retrying")
        return _seal_one(engine, signer, max_records)
    return dataclasses.replace(draft, id=new_id, signature=str(values["signature"]))
