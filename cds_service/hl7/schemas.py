"""Wire models of the HL7 inbox API (camelCase JSON)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Hl7MessagePayload(_Wire):
    """PHI: returned only when asked for (``include=payload``), and the read is audited."""

    raw: str
    ack: str | None
    application_ack: str | None
    result: dict[str, Any] | None


class Hl7MessageMetadata(_Wire):
    id: int
    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    version: str
    charset: str | None
    size: int
    received_at: str
    remote_addr: str | None
    status: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    processed_at: str | None
    result_ref: str | None
    variant_count: int | None
    problem_count: int | None
    ack_sent: bool
    application_ack_built: bool
    #: pending, sent, failed or no-route (None: no application ACK was due).
    application_ack_status: str | None = None
    application_ack_destination: str | None = None
    application_ack_attempts: int | None = None
    application_ack_error: str | None = None
    payload: Hl7MessagePayload | None = None


class Hl7MessageList(_Wire):
    items: list[Hl7MessageMetadata]
    #: Pass as ``beforeId`` for the next (older) page; None on the last page.
    next_before_id: int | None
