"""Retention: archive records older than the window, with their checkpoints, then remove them.

``oncocds audit archive --before DATE`` (never automatic, never silent):

1. seals every record into a checkpoint and verifies the trail (a broken trail is not archived);
2. picks the whole checkpoints whose records are all older than ``DATE`` (records are removed
   only in sealed batches, so the chain that remains starts right after a signed checkpoint);
3. writes them to ``<archive_dir>/audit-archive-<first>-<last>-<stamp>.jsonl``: a header line,
   one ``{"record": …}`` line per record, one ``{"checkpoint": …}`` line per checkpoint;
4. reads the file back and verifies it on its own (chain from its anchor, Merkle roots,
   signatures);
5. appends an ``audit.archive`` event (action D) naming the range, file and its SHA-256;
6. only then deletes the records. On PostgreSQL the append-only trigger lets this DELETE through
   only inside a transaction that ran ``SET LOCAL oncocds.audit_archive = 'on'`` and only for
   records at or below the last checkpoint (migration 2026_11_23_0400). Give that DELETE
   privilege to a maintenance role, not to the service's role (README).

Afterwards the trail still verifies: its oldest record links to the archived checkpoint's
``last_record_hash``, and the chain holds the archive event.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, delete, func, select, text

from cds_service.audit import merkle
from cds_service.audit.chain import GENESIS_HASH, chain_hash
from cds_service.audit.repository import hash_before, list_checkpoints
from cds_service.audit.sealing import seal
from cds_service.audit.service import AuditTrail
from cds_service.audit.signing import CheckpointSigner, Keyring, public_jwk
from cds_service.audit.tree_head import CheckpointInfo, record_json, tree_head_statement
from cds_service.audit.verification import ARCHIVE_EVENT_TYPE, verify_integrity
from cds_service.db.base import utcnow
from cds_service.errors import ConflictError, OncoCDSError
from cds_service.models.audit import AuditRecord

ARCHIVE_FORMAT: Final = "oncocds-audit-archive/1"


class ArchiveError(OncoCDSError):
    """An archive file is unreadable or does not verify."""


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    path: Path | None
    first_seq: int
    through_seq: int
    records: int
    checkpoints: int
    sha256: str | None


def archive(
    engine: Engine,
    trail: AuditTrail,
    signer: CheckpointSigner,
    keyring: Keyring,
    *,
    before: datetime,
    out_dir: Path,
    agent_who: str,
    max_records: int = 100_000,
) -> ArchiveResult:
    """Archive and remove the sealed records older than ``before`` (see the module docstring).

    Raises:
        ConflictError: the trail does not verify, so nothing is archived.
        ArchiveError: the written file does not verify (nothing is removed).
    """
    seal(engine, signer, max_records=max_records)
    report = verify_integrity(engine, keyring)
    if not report.ok:
        first = report.first_problem
        where = first.seq if first else "?"
        raise ConflictError(f"refusing to archive: the audit trail does not verify (seq {where})")
    with engine.connect() as conn:
        min_seq = conn.execute(select(func.min(AuditRecord.seq))).scalar()
        chosen: list[CheckpointInfo] = []
        for cp in list_checkpoints(conn):
            if min_seq is None or cp.last_seq < min_seq:
                continue  # archived before
            newest = conn.execute(
                select(func.max(AuditRecord.recorded)).where(
                    AuditRecord.seq >= cp.first_seq, AuditRecord.seq <= cp.last_seq
                )
            ).scalar()
            if newest is None or newest >= before:
                break
            chosen.append(cp)
        anchor = hash_before(conn, min_seq) if min_seq is not None and chosen else None
    if min_seq is None or not chosen or anchor is None:
        # Never silent: an archive run that finds nothing is recorded too.
        trail.record(
            action="D",
            event_type=ARCHIVE_EVENT_TYPE,
            agent_type="system",
            agent_who=agent_who,
            outcome_desc="nothing to archive",
            details={"records": 0, "before": before.isoformat()},
        )
        return ArchiveResult(None, 0, 0, 0, 0, None)
    first_seq, through_seq = min_seq, chosen[-1].last_seq
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"audit-archive-{first_seq}-{through_seq}-{stamp}.jsonl"
    tmp = path.with_suffix(".jsonl.partial")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        header = {
            "format": ARCHIVE_FORMAT,
            "firstSeq": first_seq,
            "throughSeq": through_seq,
            "anchorHash": anchor,
            "created": utcnow().isoformat(),
            "publicKey": public_jwk(signer.public_key),
        }
        handle.write(json.dumps(header, sort_keys=True) + "\n")
        with engine.connect() as conn:
            for row in trail.iter_rows(conn, from_seq=first_seq, to_seq=through_seq):
                handle.write(json.dumps({"record": record_json(row)}, sort_keys=True) + "\n")
                count += 1
        for cp in chosen:
            handle.write(json.dumps({"checkpoint": cp.as_json()}, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.rename(path)
    verified = verify_archive_file(path, keyring)
    if verified.records != count or verified.through_seq != through_seq:
        raise ArchiveError("the archive file does not hold every archived record")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    trail.record(
        action="D",
        event_type=ARCHIVE_EVENT_TYPE,
        agent_type="system",
        agent_who=agent_who,
        outcome_desc="records archived to a verified file, then removed",
        details={
            "firstSeq": first_seq,
            "throughSeq": through_seq,
            "records": count,
            "checkpointIds": [cp.id for cp in chosen],
            "file": path.name,
            "sha256": digest,
            "before": before.isoformat(),
        },
    )
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # The trigger's one exception (migration 2026_11_23_0400); transaction-local.
            conn.execute(text("SET LOCAL oncocds.audit_archive = 'on'"))
        conn.execute(delete(AuditRecord).where(AuditRecord.seq <= through_seq))
    return ArchiveResult(path, first_seq, through_seq, count, len(chosen), digest)


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"cannot read archive {path.name}: {type(exc).__name__}") from exc


def verify_archive_file(path: Path, keyring: Keyring) -> ArchiveResult:
    """Verify an archive on its own: chain from its anchor, tree heads, signatures.

    Raises:
        ArchiveError: naming the first thing that does not verify.
    """
    lines = _lines(path)
    header = next(lines, None)
    if not header or header.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"{path.name} is not an {ARCHIVE_FORMAT} file")
    prev = str(header.get("anchorHash") or GENESIS_HASH)
    expected_seq = int(header["firstSeq"])
    hashes: dict[int, str] = {}
    checkpoints: list[dict[str, Any]] = []
    for item in lines:
        if "record" in item:
            rec = item["record"]
            if rec["seq"] != expected_seq or rec["prev_hash"] != prev:
                raise ArchiveError(f"archive chain broken at seq {rec['seq']}")
            if chain_hash(prev, rec) != rec["record_hash"]:
                raise ArchiveError(f"archived record seq {rec['seq']} was altered")
            hashes[rec["seq"]] = rec["record_hash"]
            prev, expected_seq = rec["record_hash"], expected_seq + 1
        elif "checkpoint" in item:
            checkpoints.append(item["checkpoint"])
    for cp in checkpoints:
        statement = tree_head_statement(
            first_seq=cp["firstSeq"],
            last_seq=cp["lastSeq"],
            tree_size=cp["treeSize"],
            root_hash=cp["rootHash"],
            last_record_hash=cp["lastRecordHash"],
            key_id=cp["keyId"],
            created=cp["created"],
        )
        reason = keyring.verify(cp["keyId"], statement, cp["signature"])
        if reason is not None:
            raise ArchiveError(f"archived checkpoint {cp['id']}: {reason}")
        leaves = []
        for seq in range(cp["firstSeq"], cp["lastSeq"] + 1):
            if seq not in hashes:
                raise ArchiveError(f"archived checkpoint {cp['id']} lacks record seq {seq}")
            leaves.append(merkle.leaf_hash(bytes.fromhex(hashes[seq])))
        if merkle.root_from_leaf_hashes(leaves).hex() != cp["rootHash"]:
            raise ArchiveError(f"archived checkpoint {cp['id']}: tree head does not match")
    through = expected_seq - 1
    if not checkpoints or checkpoints[-1]["lastSeq"] != through:
        raise ArchiveError("the archive's last record is not sealed by its last checkpoint")
    return ArchiveResult(
        path, int(header["firstSeq"]), through, len(hashes), len(checkpoints), None
    )
