"""Delivery of enhanced-mode application ACKs (HL7 v2.5.1 ch. 2.9.3, MSH-16).

In MLLP practice the receiver sends the application ACK back as a message of its own, on a new
connection to the *sender's* listener. The destination is configured per sender
(``ONCOCDS_HL7__APPLICATION_ACK_ROUTES``, keyed ``MSH-3|MSH-4``); without one the ACK is kept
with status ``no-route`` and shown by ``oncocds hl7 show``. The worker stores the ACK with the
message's outcome (status ``pending``), then delivers due ones: a positive answer (AA/CA) from
the sender's listener ends it (``sent``); anything else is retried with exponential backoff
(``retry_base_seconds`` doubling up to ``retry_max_seconds``) until ``max_attempts``, then
``failed``. Every attempt is audited (``hl7.application-ack``) with the control id, never the
content.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from cds_service.audit import AuditTrail, Outcome
from cds_service.errors import DatabaseError
from cds_service.hl7.repository import InboxRepository, PendingApplicationAck
from cds_service.settings import Hl7Settings
from integrations.hl7v2.mllp import send_and_receive

log = logging.getLogger(__name__)

#: HL7 table 0008 codes that mean the sender's listener took our ACK.
POSITIVE = frozenset({"AA", "CA"})


def route_for(settings: Hl7Settings, sending_application: str, sending_facility: str) -> str | None:
    """The ``host:port`` of the sender's listener, or None."""
    return settings.application_ack_routes.get(f"{sending_application}|{sending_facility}")


def _answer_code(answer: bytes) -> str:
    marker = answer.find(b"MSA")
    if marker < 0 or len(answer) < marker + 6:
        return ""
    separator = answer[marker + 3 : marker + 4]
    return answer[marker + 4 :].split(separator, 1)[0][:2].decode("ascii", "replace")


class ApplicationAckSender:
    """Sends due application ACKs (after each hl7.process job, and by the periodic
    ``hl7.application-acks`` job)."""

    def __init__(
        self,
        repository: InboxRepository,
        settings: Hl7Settings,
        *,
        audit: AuditTrail,
        name: str = "hl7-worker",
    ) -> None:
        self._repo = repository
        self._settings = settings
        self._audit = audit
        self._name = name

    def _backoff(self, attempts: int) -> timedelta:
        seconds = self._settings.retry_base_seconds * (2 ** max(attempts - 1, 0))
        return timedelta(seconds=min(seconds, self._settings.retry_max_seconds))

    def deliver_due(self, now: datetime) -> int:
        """Attempt every due delivery once; return how many were attempted."""
        claimed = self._repo.claim_application_acks(
            limit=self._settings.worker_batch,
            now=now,
            lease=timedelta(seconds=self._settings.lease_seconds),
        )
        for pending in claimed:
            self._deliver(pending, now)
        return len(claimed)

    def _deliver(self, pending: PendingApplicationAck, now: datetime) -> None:
        host, _, port = pending.destination.rpartition(":")
        error: str | None = None
        try:
            answer = send_and_receive(
                host.strip("[]"),
                int(port),
                pending.ack,
                timeout=self._settings.application_ack_timeout_seconds,
            )
            code = _answer_code(answer)
            if code not in POSITIVE:
                error = f"the sender's listener answered {code or 'without an MSA code'}"
        except (OSError, ValueError) as exc:
            error = f"delivery failed ({type(exc).__name__})"
        if error is None:
            status, next_at = "sent", None
        elif pending.attempts >= self._settings.max_attempts:
            status, next_at = "failed", None
            error = f"{error}; gave up after {pending.attempts} attempts"
        else:
            status, next_at = "pending", now + self._backoff(pending.attempts)
        if not self._repo.finish_application_ack(
            pending, status=status, error=error, next_at=next_at
        ):
            return
        if error is not None:
            log.warning(
                "HL7 application ACK not delivered",
                extra={"control_id": pending.control_id, "attempt": pending.attempts},
            )
        try:
            self._audit.record(
                action="E",
                event_type="hl7.application-ack",
                event_subtype="sent" if status == "sent" else ("retry" if next_at else "failed"),
                outcome=Outcome.SUCCESS if status == "sent" else Outcome.MINOR_FAILURE,
                outcome_desc=error,
                agent_who=self._name,
                agent_type="system",
                control_id=pending.control_id,
                entities=[{"type": "Hl7InboxMessage", "id": str(pending.id)}],
                details={
                    "inboxId": pending.id,
                    "destination": pending.destination,
                    "attempt": pending.attempts,
                    "ackCode": _answer_code(pending.ack),
                },
            )
        except DatabaseError:
            log.exception("HL7 application ACK audit record could not be written")
