"""Verification: the hash chain, every checkpoint's tree head and every signature.

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

Archived records (``cds_service.audit.archive``) are anchored by the signed checkpoint that ends
just before the oldest present record, and the chain must hold the ``audit.archive`` event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, Engine

from cds_service.audit import merkle, repository
from cds_service.audit.chain import GENESIS_HASH
from cds_service.audit.service import AuditTrail
from cds_service.audit.signing import Keyring
from cds_service.audit.tree_head import CheckpointInfo

ARCHIVE_EVENT_TYPE: Final = "audit.archive"


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
        return repository.record_hash_at(conn, start - 1), None, None
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
        min_seq, max_seq = repository.seq_bounds(conn)
        checkpoints = repository.list_checkpoints(conn)
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
