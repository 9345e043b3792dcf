"""Canonical form and hash chain of audit records.

``record_hash = SHA-256(prev_hash || 0x0A || canonical_json(record))`` where ``canonical_json``
is the record's fields (all but ``record_hash``) as JSON with sorted keys, no insignificant
whitespace, UTF-8, and timestamps as ISO 8601 UTC with microseconds. Changing any field, the
order of records (``seq`` is hashed) or removing a record breaks the chain from that point on.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Final

GENESIS_HASH: Final = "0" * 64

#: The hashed fields, in no particular order (the JSON is key-sorted).
HASHED_FIELDS: Final = (
    "seq",
    "id",
    "recorded",
    "action",
    "event_type",
    "event_subtype",
    "outcome",
    "outcome_desc",
    "agent_type",
    "agent_who",
    "agent_user",
    "tenant",
    "patient_id",
    "entities",
    "hook_instance",
    "control_id",
    "purpose_of_use",
    "source_observer",
    "request_id",
    "remote_addr",
    "details",
    "prev_hash",
)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in an audit record")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise TypeError(f"not JSON-serialisable in an audit record: {type(value).__name__}")


def canonical_bytes(fields: dict[str, Any]) -> bytes:
    """Canonical JSON of the hashed fields of one record."""
    subset = {name: fields.get(name) for name in HASHED_FIELDS}
    return json.dumps(
        subset, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    ).encode("utf-8")


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The record hash of ``fields`` linked to ``prev_hash``."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_bytes(fields))
    return digest.hexdigest()
