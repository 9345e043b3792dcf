"""Operator actions on the inbox shared by the CLI and the API: views and replay, audited."""

from __future__ import annotations

from typing import Any

from cds_service.audit import AuditTrail
from cds_service.db.base import utcnow
from cds_service.hl7.repository import InboxRepository
from cds_service.models.hl7 import Hl7InboxMessage


def message_metadata(row: Hl7InboxMessage) -> dict[str, Any]:
    """Metadata of one inbox message: identifiers, status and counts, no clinical content."""
    result = row.result or {}
    return {
        "id": row.id,
        "sendingApplication": row.sending_application,
        "sendingFacility": row.sending_facility,
        "controlId": row.control_id,
        "messageType": row.message_type,
        "version": row.version,
        "charset": row.charset,
        "size": row.size,
        "receivedAt": row.received_at.isoformat(),
        "remoteAddr": row.remote_addr,
        "status": row.status,
        "attempts": row.attempts,
        "nextAttemptAt": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
        "lastError": row.last_error,
        "processedAt": row.processed_at.isoformat() if row.processed_at else None,
        "resultRef": row.result_ref,
        "variantCount": len(result.get("variants", [])) if row.result else None,
        "problemCount": len(result.get("problems", [])) if row.result else None,
        "ackSent": row.ack is not None,
        "applicationAckBuilt": row.application_ack is not None,
        "applicationAckStatus": row.application_ack_status,
        "applicationAckDestination": row.application_ack_destination,
        "applicationAckAttempts": row.application_ack_attempts,
        "applicationAckError": row.application_ack_error,
    }


def message_payload(row: Hl7InboxMessage) -> dict[str, Any]:
    """The PHI-bearing parts: the raw message (as text), the ACK and the result summary."""
    codec = row.charset or "iso8859-1"
    return {
        "raw": row.raw.decode(codec, errors="replace"),
        "ack": row.ack.decode(codec, errors="replace") if row.ack else None,
        "applicationAck": (
            row.application_ack.decode(codec, errors="replace") if row.application_ack else None
        ),
        "result": row.result,
    }


def audit_payload_read(
    trail: AuditTrail, row: Hl7InboxMessage, *, agent_who: str, **context: Any
) -> None:
    """A read of a stored message's content is a PHI access: audit it (BALP read, R)."""
    trail.record(
        action="R",
        event_type="hl7.message.read",
        agent_who=agent_who,
        control_id=row.control_id,
        entities=[{"type": "Hl7InboxMessage", "id": str(row.id)}],
        **context,
    )


def replay(
    repository: InboxRepository,
    trail: AuditTrail,
    message_id: int,
    *,
    agent_who: str,
    force: bool = False,
    **context: Any,
) -> Hl7InboxMessage:
    """Queue a message for processing again and audit it (``hl7.replayed``).

    Raises:
        NotFoundError: no such message.
        ConflictError: the message cannot be replayed in its current status.
    """
    row = repository.replay(message_id, now=utcnow(), force=force)
    trail.record(
        action="U",
        event_type="hl7.replayed",
        agent_who=agent_who,
        control_id=row.control_id,
        entities=[{"type": "Hl7InboxMessage", "id": str(row.id)}],
        details={"force": force},
        **context,
    )
    return row
