"""Wire models of the compliance API (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class AuditRecordOut(_Wire):
    """One audit record as compliance staff see it: identifiers only, never clinical content."""

    id: str
    seq: int
    recorded: datetime
    action: str
    event_type: str
    event_subtype: str | None = None
    outcome: int
    outcome_desc: str | None = None
    agent_type: str
    agent_who: str
    agent_user: str | None = None
    tenant: str | None = None
    patient_id: str | None = None
    entities: list[dict[str, Any]] = Field(default_factory=list)
    hook_instance: str | None = None
    control_id: str | None = None
    purpose_of_use: str | None = None
    source_observer: str
    request_id: str | None = None
    remote_addr: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    record_hash: str


class SearchPage(_Wire):
    items: list[AuditRecordOut]
    #: Pass as ``cursor`` to get the next (older) page; ``None`` on the last page.
    next_cursor: int | None = None
    limit: int


class Disclosure(_Wire):
    """One entry of a §164.528 accounting of disclosures."""

    date: datetime
    recipient: str
    user: str | None = None
    what: str
    purpose: str
    event_type: str
    record_id: str
    #: Treatment, payment or operations: exempt from the accounting (§164.528(a)(1)(i)).
    tpo_exempt: bool


class DisclosureReport(_Wire):
    patient: str
    since: datetime
    until: datetime
    disclosures: list[Disclosure]
    truncated: bool
