"""Wire models of the jobs API (camelCase JSON)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class JobMetadata(_Wire):
    id: int
    kind: str
    queue: str
    key: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: str | None
    lease_owner: str | None
    locked_until: str | None
    #: Why the last attempt failed (PHI-free: an exception type or a stated reason).
    last_error: str | None
    created_at: str
    updated_at: str
    finished_at: str | None
    published_at: str | None
    #: One job only (``GET /api/v1/jobs/{id}``): its payload and result, identifiers only.
    payload: dict[str, Any] | None = None
    result: dict[str, Any] | None = None


class JobList(_Wire):
    items: list[JobMetadata]
    #: Pass as ``beforeId`` for the next (older) page; None on the last page.
    next_before_id: int | None
