"""What a checkpoint is and what its signature covers (no database, no key).

A checkpoint seals the records ``first_seq..last_seq``: an RFC 6962 Merkle tree head over their
record hashes, signed with the service's Ed25519 key. The signed bytes are the canonical JSON of
:func:`tree_head_statement`; :class:`CheckpointInfo` is a checkpoint as exported (API, CLI,
archive files, proofs), and :func:`record_json` a record as exported beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cds_service.audit.chain import HASHED_FIELDS

STATEMENT_TYPE: Final = "oncocds-audit-checkpoint/1"


def iso_utc(value: datetime) -> str:
    """The RFC 3339 UTC form (microseconds, ``Z``) used in statements and exports."""
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
        "created": created if isinstance(created, str) else iso_utc(created),
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
            "created": iso_utc(self.created),
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


def record_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record's hashed fields and its hash, as exported (proofs, archive files)."""
    out: dict[str, Any] = {}
    for name in (*HASHED_FIELDS, "record_hash"):
        value = row[name]
        out[name] = iso_utc(value) if isinstance(value, datetime) else value
    return out
