"""Signed checkpoints over the audit chain, integrity verification, and inclusion proofs.

A *checkpoint* seals the records ``first_seq..last_seq`` that no earlier checkpoint sealed: an
RFC 6962 Merkle tree head over their record hashes (leaf data = the 32 raw bytes of
``record_hash``, which commits to the record's canonical JSON and to its predecessor) signed
with the service's Ed25519 key. The signed statement is the canonical JSON of
:func:`tree_head_statement`.

What each layer catches:

- the hash chain (``cds_service.audit.chain``): an altered, deleted, inserted or reordered
  record anywhere *before the last record*;
- checkpoints: a chain rewritten consistently from some point on (every hash recomputed), and
  records removed from the tail (a checkpoint seals more records than are left). Records
  appended after the last checkpoint are only chain-protected until the next one: the API
  seals every ``ONCOCDS_AUDIT__CHECKPOINT_INTERVAL_SECONDS`` (default 300 s); without the API,
  run ``oncocds audit checkpoint`` from cron;
- signatures: a forged or replaced checkpoint (only the service holds the private key; the
  verifier trusts public keys it is given, never keys stored beside the data).

Inclusion proofs (RFC 9162 §2.1.3) let anyone check one record against a signed tree head
offline, with the proof file and the public key alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from cds_service.audit import merkle
from cds_service.audit.chain import GENESIS_HASH, HASHED_FIELDS, chain_hash
from cds_service.audit.service import AuditTrail
from cds_service.audit.signing import (
    CheckpointSigner,
    Keyring,
    SigningKeyError,
    key_id_of,
    public_jwk,
    public_key_from_jwk,
)
from cds_service.db.base import utcnow
from cds_service.errors import ConflictError, NotFoundError, OncoCDSError
from cds_service.models.audit import AuditRecord
from cds_service.models.audit_checkpoint import AuditCheckpoint

log = logging.getLogger(__name__)

PROOF_FORMAT: Final = "oncocds-audit-inclusion-proof/1"
STATEMENT_TYPE: Final = "oncocds-audit-checkpoint/1"
#: Separate from the append lock: sealing never blocks writers.
_CHECKPOINT_LOCK_KEY: Final = 0x0C0DA0D2
ARCHIVE_EVENT_TYPE: Final = "audit.archive"


class ProofError(OncoCDSError):
    """An inclusion proof is malformed or does not verify."""


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tree_head_statement(
    *,
    first_seq: int,
    last_seq: int,
    tree_size: int,
    root_hash: str,
    last_record_hash: str,
    key_id: str,
    created: datetime | str,
) -> bytes:
    """The exact bytes a checkpoint signature covers (canonical JSON, sorted keys)."""
    body = {
        "type": STATEMENT_TYPE,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "tree_size": tree_size,
        "root_hash": root_hash,
        "last_record_hash": last_record_hash,
        "key_id": key_id,
        "created": created if isinstance(created, str) else _iso(created),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """A checkpoint as exported (API, CLI, archive files, proofs)."""

    id: int
    first_seq: int
    last_seq: int
    tree_size: int
    root_hash: str
    last_record_hash: str
    signature: str
    key_id: str
    created: datetime

    def statement(self) -> bytes:
        return tree_head_statement(
            first_seq=self.first_seq,
            last_seq=self.last_seq,
            tree_size=self.tree_size,
            root_hash=self.root_hash,
            last_record_hash=self.last_record_hash,
            key_id=self.key_id,
            created=self.created,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "firstSeq": self.first_seq,
            "lastSeq": self.last_seq,
            "treeSize": self.tree_size,
            "rootHash": self.root_hash,
            "lastRecordHash": self.last_record_hash,
            "signature": self.signature,
            "keyId": self.key_id,
            "created": _iso(self.created),
            "algorithm": "Ed25519",
            "statementType": STATEMENT_TYPE,
        }

    @classmethod
    def from_row(cls, row: Any) -> CheckpointInfo:
        m = row._mapping if hasattr(row, "_mapping") else row
        return cls(
            id=m["id"],
            first_seq=m["first_seq"],
            last_seq=m["last_seq"],
            tree_size=m["tree_size"],
            root_hash=m["root_hash"],
            last_record_hash=m["last_record_hash"],
            signature=m["signature"],
            key_id=m["key_id"],
            created=m["created"],
        )


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


# ---------------------------------------------------------------------------------- sealing


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
            if engine.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHECKPOINT_LOCK_KEY}
                )
            sealed_to = conn.execute(select(func.max(AuditCheckpoint.last_seq))).scalar()
            if sealed_to is None:
                start = conn.execute(select(func.min(AuditRecord.seq))).scalar()
                if start is None:
                    return None
                prev = _hash_before(conn, start)
            else:
                start = sealed_to + 1
                prev = conn.execute(
                    select(AuditCheckpoint.last_record_hash).where(
                        AuditCheckpoint.last_seq == sealed_to
                    )
                ).scalar_one()
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
            new_id = conn.execute(
                insert(AuditCheckpoint).returning(AuditCheckpoint.id), values
            ).scalar_one()
    except IntegrityError:
        # SQLite has no advisory lock: another sealer took this range first. Try again from
        # the new last checkpoint.
        log.info("checkpoint race lost; retrying")
        return _seal_one(engine, signer, max_records)
    return dataclasses.replace(draft, id=int(new_id), signature=str(values["signature"]))


def _hash_before(conn: Connection, seq: int) -> str:
    """The chain hash a record at ``seq`` must link to (genesis, a record, or an archive anchor)."""
    if seq == 1:
        return GENESIS_HASH
    prev = conn.execute(
        select(AuditRecord.record_hash).where(AuditRecord.seq == seq - 1)
    ).scalar_one_or_none()
    if prev is not None:
        return str(prev)
    anchor = conn.execute(
        select(AuditCheckpoint.last_record_hash).where(AuditCheckpoint.last_seq == seq - 1)
    ).scalar_one_or_none()
    if anchor is None:
        raise ConflictError(f"records before seq {seq} are missing and no checkpoint anchors them")
    return str(anchor)


# ----------------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class IntegrityProblem:
    """One thing verification found wrong; ``seq`` is the first record it concerns."""

    seq: int
    reason: str
    record_id: str | None = None
    checkpoint_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "recordId": self.record_id,
            "checkpointId": self.checkpoint_id,
            "reason": self.reason,
        }


@dataclass(slots=True)
class IntegrityReport:
    """The outcome of :func:`verify_integrity`."""

    records_checked: int = 0
    checkpoints_checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    sealed_to: int | None = None
    problems: list[IntegrityProblem] = field(default_factory=list)
    last_checkpoint: CheckpointInfo | None = None
    _checkpoint_ends: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> IntegrityProblem | None:
        """The earliest problem, preferring a named record over the checkpoint it breaks.

        A checkpoint whose range holds a broken record is explained by that record, so the
        record is reported; a checkpoint problem stands alone when its records look intact (a
        consistently rewritten chain, a truncated tail, a forged signature).
        """
        records = [p for p in self.problems if p.record_id is not None]
        standalone = [
            p
            for p in self.problems
            if p.record_id is None
            and not any(
                p.checkpoint_id is not None and r.seq >= p.seq and r.seq <= self._end_of(p)
                for r in records
            )
        ]
        candidates = records + standalone
        return min(candidates, key=lambda p: p.seq) if candidates else None

    def _end_of(self, problem: IntegrityProblem) -> int:
        return self._checkpoint_ends.get(problem.checkpoint_id or -1, problem.seq)

    @property
    def unsealed(self) -> int:
        if self.last_seq is None:
            return 0
        return self.last_seq - (self.sealed_to or (self.first_seq or 1) - 1)

    def as_json(self) -> dict[str, Any]:
        first = self.first_problem
        return {
            "ok": self.ok,
            "recordsChecked": self.records_checked,
            "checkpointsChecked": self.checkpoints_checked,
            "firstSeq": self.first_seq,
            "lastSeq": self.last_seq,
            "sealedTo": self.sealed_to,
            "unsealedRecords": self.unsealed,
            "firstBroken": first.as_json() if first else None,
            "problems": [p.as_json() for p in sorted(self.problems, key=lambda p: p.seq)[:100]],
            "lastCheckpoint": self.last_checkpoint.as_json() if self.last_checkpoint else None,
        }


class _TreeAccumulator:
    """Streams leaf hashes of one checkpoint's range into its root (O(log n) memory)."""

    def __init__(self, checkpoint: CheckpointInfo) -> None:
        self.checkpoint = checkpoint
        self.stack: list[tuple[int, bytes]] = []
        self.count = 0
        self.next_seq = checkpoint.first_seq

    def add(self, record_hash: str) -> None:
        value, height = merkle.leaf_hash(bytes.fromhex(record_hash)), 0
        while self.stack and self.stack[-1][0] == height:
            value = merkle.node_hash(self.stack.pop()[1], value)
            height += 1
        self.stack.append((height, value))
        self.count += 1

    def root(self) -> bytes:
        if not self.stack:
            return merkle.root_from_leaf_hashes([])
        stack = list(self.stack)
        value = stack.pop()[1]
        while stack:
            value = merkle.node_hash(stack.pop()[1], value)
        return value


def _check_checkpoints(
    checkpoints: list[CheckpointInfo], keyring: Keyring, max_seq: int | None
) -> list[IntegrityProblem]:
    """Checkpoints on their own: signature, shape, contiguity, and whether the records they seal
    are still there (a truncated tail shows up here)."""
    problems: list[IntegrityProblem] = []
    expected_first = checkpoints[0].first_seq if checkpoints else 1
    for cp in checkpoints:
        reason = keyring.verify(cp.key_id, cp.statement(), cp.signature)
        if reason is not None:
            problems.append(
                IntegrityProblem(cp.first_seq, f"checkpoint {cp.id}: {reason}", None, cp.id)
            )
        if cp.tree_size != cp.last_seq - cp.first_seq + 1:
            problems.append(
                IntegrityProblem(
                    cp.first_seq,
                    f"checkpoint {cp.id}: tree size {cp.tree_size} does not match its "
                    f"range {cp.first_seq}..{cp.last_seq}",
                    None,
                    cp.id,
                )
            )
        if cp.first_seq != expected_first:
            problems.append(
                IntegrityProblem(
                    min(cp.first_seq, expected_first),
                    f"checkpoint {cp.id} starts at seq {cp.first_seq}, expected "
                    f"{expected_first} (checkpoints overlap or leave a gap)",
                    None,
                    cp.id,
                )
            )
        expected_first = cp.last_seq + 1
        if max_seq is None or cp.last_seq > max_seq:
            problems.append(
                IntegrityProblem(
                    max((max_seq or 0) + 1, cp.first_seq),
                    f"records missing: checkpoint {cp.id} seals seq {cp.first_seq}.."
                    f"{cp.last_seq} (tree size {cp.tree_size}) but the trail ends at seq "
                    f"{max_seq} (tail truncated)",
                    None,
                    cp.id,
                )
            )
    return problems


def _widen(
    checkpoints: list[CheckpointInfo], start: int, end: int, min_seq: int, max_seq: int
) -> tuple[int, int]:
    for cp in checkpoints:
        if cp.first_seq <= start <= cp.last_seq:
            start = max(cp.first_seq, min_seq)
        if cp.first_seq <= end <= cp.last_seq:
            end = min(cp.last_seq, max_seq)
    return start, end


def _anchor(
    conn: Connection, start: int, min_seq: int, by_last: dict[int, CheckpointInfo]
) -> tuple[str | None, int | None, IntegrityProblem | None]:
    """The hash record ``start`` must link to, the archive event it needs, or a problem."""
    if start == 1:
        return GENESIS_HASH, None, None
    if start > min_seq:
        prev = conn.execute(
            select(AuditRecord.record_hash).where(AuditRecord.seq == start - 1)
        ).scalar_one_or_none()
        return prev, None, None
    # Older records were archived: the signed checkpoint that ends just before the oldest
    # present record is the anchor, and the chain must hold the archive event.
    anchor_cp = by_last.get(start - 1)
    if anchor_cp is None:
        return (
            None,
            None,
            IntegrityProblem(
                start,
                f"records before seq {start} are missing and no checkpoint ends at "
                f"seq {start - 1} to anchor them (deleted, not archived)",
            ),
        )
    return anchor_cp.last_record_hash, start - 1, None


def _is_archive_event(row: Mapping[str, Any], through_seq: int) -> bool:
    details = row["details"]
    return (
        row["event_type"] == ARCHIVE_EVENT_TYPE
        and isinstance(details, Mapping)
        and details.get("throughSeq") == through_seq
    )


def verify_integrity(
    engine: Engine,
    keyring: Keyring,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
) -> IntegrityReport:
    """Check the hash chain, every checkpoint's tree head and every signature.

    Args:
        engine: the database.
        keyring: the trusted checkpoint public keys.
        from_seq: first record to check (default: the oldest present).
        to_seq: last record to check (default: the newest). Checkpoints overlapping the range
            are checked whole, so the range widens to checkpoint boundaries.

    Returns:
        A report naming every problem, the first by chain position first.
    """
    report = IntegrityReport()
    with engine.connect() as conn:
        min_seq = conn.execute(select(func.min(AuditRecord.seq))).scalar()
        max_seq = conn.execute(select(func.max(AuditRecord.seq))).scalar()
        checkpoints = list_checkpoints(conn)
        report.first_seq, report.last_seq = min_seq, max_seq
        report.last_checkpoint = checkpoints[-1] if checkpoints else None
        report.sealed_to = checkpoints[-1].last_seq if checkpoints else None
        report.problems.extend(_check_checkpoints(checkpoints, keyring, max_seq))
        report._checkpoint_ends = {c.id: c.last_seq for c in checkpoints}
        report.checkpoints_checked = len(checkpoints)
        if min_seq is None or max_seq is None:
            return report
        start, end = _widen(
            checkpoints,
            max(from_seq or min_seq, min_seq),
            min(to_seq if to_seq is not None else max_seq, max_seq),
            min_seq,
            max_seq,
        )
        if start > end:
            return report
        anchor, need_archive_event, problem = _anchor(
            conn, start, min_seq, {c.last_seq: c for c in checkpoints}
        )
        if problem is not None:
            report.problems.append(problem)

        # One pass over the records: chain links and content, and each checkpoint's root.
        cp_iter: Iterator[CheckpointInfo] = iter(
            [c for c in checkpoints if c.last_seq >= start and c.first_seq <= end]
        )
        current = next(cp_iter, None)
        acc = _TreeAccumulator(current) if current else None
        expected_seq, expected_prev = start, anchor
        trail = AuditTrail(engine, source_observer="verifier")
        for row in trail.iter_rows(conn, from_seq=start, to_seq=end):
            report.records_checked += 1
            reason = AuditTrail._check_row(row, expected_seq, expected_prev)
            if reason is not None:
                report.problems.append(IntegrityProblem(row["seq"], reason, row["id"]))
            expected_seq, expected_prev = row["seq"] + 1, row["record_hash"]
            if need_archive_event is not None and _is_archive_event(row, need_archive_event):
                need_archive_event = None
            while acc is not None and row["seq"] > acc.checkpoint.last_seq:
                _close(acc, report, row_hash=None)
                current = next(cp_iter, None)
                acc = _TreeAccumulator(current) if current else None
            if acc is not None and acc.checkpoint.first_seq <= row["seq"]:
                acc.add(row["record_hash"])
                if row["seq"] == acc.checkpoint.last_seq:
                    _close(acc, report, row_hash=row["record_hash"])
                    current = next(cp_iter, None)
                    acc = _TreeAccumulator(current) if current else None
        if acc is not None and acc.count:
            _close(acc, report, row_hash=None)
        if need_archive_event is not None and to_seq is None:
            report.problems.append(
                IntegrityProblem(
                    start,
                    f"records up to seq {need_archive_event} are gone but no audit.archive "
                    "event in the trail records their archiving",
                )
            )
    return report


def _close(acc: _TreeAccumulator, report: IntegrityReport, *, row_hash: str | None) -> None:
    cp = acc.checkpoint
    if acc.root().hex() != cp.root_hash or acc.count != cp.tree_size:
        report.problems.append(
            IntegrityProblem(
                cp.first_seq,
                f"checkpoint {cp.id}: Merkle tree head over seq {cp.first_seq}..{cp.last_seq} "
                f"does not match the signed root (records in this range were altered, "
                f"inserted, removed or rewritten; {acc.count} of {cp.tree_size} leaves present)",
                None,
                cp.id,
            )
        )
    elif row_hash is not None and row_hash != cp.last_record_hash:
        report.problems.append(
            IntegrityProblem(
                cp.last_seq,
                f"checkpoint {cp.id}: last record hash differs from the signed one",
                None,
                cp.id,
            )
        )


# ------------------------------------------------------------------------- inclusion proofs


def _record_json(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (*HASHED_FIELDS, "record_hash"):
        value = row[name]
        out[name] = _iso(value) if isinstance(value, datetime) else value
    return out


def prove(engine: Engine, record_id: str, signer: CheckpointSigner) -> dict[str, Any]:
    """An inclusion proof for record ``record_id`` against the checkpoint that seals it.

    Seals unsealed records first when the record is not yet covered.

    Raises:
        NotFoundError: no such record.
    """
    with engine.connect() as conn:
        row = conn.execute(select(AuditRecord.__table__).where(AuditRecord.id == record_id)).first()
    if row is None:
        raise NotFoundError("no audit record with that id")
    record = dict(row._mapping)
    seq = record["seq"]
    with engine.connect() as conn:
        cp_row = conn.execute(
            select(AuditCheckpoint.__table__).where(
                AuditCheckpoint.first_seq <= seq, AuditCheckpoint.last_seq >= seq
            )
        ).first()
    if cp_row is None:
        seal(engine, signer)
        with engine.connect() as conn:
            cp_row = conn.execute(
                select(AuditCheckpoint.__table__).where(
                    AuditCheckpoint.first_seq <= seq, AuditCheckpoint.last_seq >= seq
                )
            ).first()
    if cp_row is None:
        raise NotFoundError("the record is not sealed by any checkpoint")
    cp = CheckpointInfo.from_row(cp_row)
    with engine.connect() as conn:
        hashes = [
            merkle.leaf_hash(bytes.fromhex(h))
            for h in conn.execute(
                select(AuditRecord.record_hash)
                .where(AuditRecord.seq >= cp.first_seq, AuditRecord.seq <= cp.last_seq)
                .order_by(AuditRecord.seq)
            ).scalars()
        ]
    index = seq - cp.first_seq
    path = merkle.inclusion_path(index, hashes)
    return {
        "format": PROOF_FORMAT,
        "record": _record_json(record),
        "leafIndex": index,
        "leafHash": hashes[index].hex(),
        "auditPath": [p.hex() for p in path],
        "treeHead": cp.as_json(),
        "publicKey": public_jwk(signer.public_key),
    }


@dataclass(frozen=True, slots=True)
class ProofCheck:
    record_id: str
    seq: int
    checkpoint_id: int
    tree_size: int
    key_id: str


def check_proof(proof: Mapping[str, Any], *, pinned_key_id: str | None = None) -> ProofCheck:
    """Check an inclusion proof offline (no database).

    Recomputes the record hash from the record's fields, the leaf hash, the Merkle root from the
    audit path (RFC 9162 §2.1.3.2), and the Ed25519 signature over the tree head with the
    proof's public key, whose key id must match the tree head's (and ``pinned_key_id`` when
    given: a proof's own key only proves consistency, the pin proves origin).

    Raises:
        ProofError: naming the first check that failed.
    """
    try:
        if proof.get("format") != PROOF_FORMAT:
            raise ProofError(f"not an {PROOF_FORMAT} file")
        record = dict(proof["record"])
        head = dict(proof["treeHead"])
        index = int(proof["leafIndex"])
        path = [bytes.fromhex(p) for p in proof["auditPath"]]
        public_key = public_key_from_jwk(proof["publicKey"])
        first_seq, last_seq = int(head["firstSeq"]), int(head["lastSeq"])
        tree_size = int(head["treeSize"])
        root = bytes.fromhex(head["rootHash"])
    except (KeyError, TypeError, ValueError, SigningKeyError) as exc:
        raise ProofError(f"malformed proof: {type(exc).__name__}") from exc
    recomputed = chain_hash(str(record["prev_hash"]), record)
    if recomputed != record.get("record_hash"):
        raise ProofError("the record's content does not match its record hash")
    if int(record["seq"]) - first_seq != index or not first_seq <= int(record["seq"]) <= last_seq:
        raise ProofError("the record's position does not match the leaf index")
    leaf = merkle.leaf_hash(bytes.fromhex(recomputed))
    if leaf.hex() != proof.get("leafHash"):
        raise ProofError("leaf hash does not match the record hash")
    try:
        computed_root = merkle.root_from_inclusion_path(index, tree_size, leaf, path)
    except ValueError as exc:
        raise ProofError(f"audit path does not fit the tree: {exc}") from exc
    if computed_root != root:
        raise ProofError("audit path does not lead to the signed root")
    key_id = key_id_of(public_key)
    if key_id != head.get("keyId"):
        raise ProofError("the public key is not the key named by the tree head")
    if pinned_key_id is not None and key_id != pinned_key_id:
        raise ProofError(f"signed by key {key_id}, not the trusted key {pinned_key_id}")
    statement = tree_head_statement(
        first_seq=first_seq,
        last_seq=last_seq,
        tree_size=tree_size,
        root_hash=root.hex(),
        last_record_hash=str(head["lastRecordHash"]),
        key_id=key_id,
        created=str(head["created"]),
    )
    if Keyring([public_key]).verify(key_id, statement, str(head["signature"])) is not None:
        raise ProofError("the tree head signature does not verify")
    return ProofCheck(
        record_id=str(record["id"]),
        seq=int(record["seq"]),
        checkpoint_id=int(head["id"]),
        tree_size=tree_size,
        key_id=key_id,
    )
