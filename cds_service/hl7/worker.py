"""Processing one stored message: claim it, run the processor, record the outcome.

:class:`Worker` has no loop of its own: the ``hl7.process`` job of each message
(:mod:`.jobs`) calls :meth:`Worker.process_id`, on whichever executor runs jobs (in-process
threads in ``oncocds mllp``, ``oncocds hl7 worker`` or an API process; Celery workers with a
broker), and the periodic ``hl7.application-acks`` job calls
:meth:`Worker.deliver_application_acks`. Any number of workers may share one PostgreSQL
database (see :mod:`.repository` for how claims exclude each other). A transient error is
recorded on the message (``next_attempt_at`` after ``retry_base_seconds`` doubling up to
``retry_max_seconds``) and its job retried after the same wait (:meth:`Worker.retry_delay`)
until the message's ``max_attempts``; then, and on
any permanent error, the message is marked failed with a PHI-free reason and stays in the
inbox for ``oncocds hl7 replay``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from cds_service.audit import AuditTrail, Outcome
from cds_service.db.base import utcnow
from cds_service.errors import DatabaseError
from cds_service.hl7.appack import ApplicationAckSender, route_for
from cds_service.hl7.processing import (
    InboundMessage,
    ProcessingResult,
    ResultProcessor,
    TransientProcessingError,
)
from cds_service.hl7.repository import ClaimedMessage, InboxRepository
from cds_service.settings import Hl7Settings
from integrations.hl7v2.ack import (
    AckError,
    Responder,
    application_ack_code,
    build_ack,
    encode_ack,
)
from integrations.hl7v2.ack import (
    Outcome as AckOutcome,
)
from integrations.hl7v2.errors import APPLICATION_INTERNAL_ERROR, Hl7Error
from integrations.hl7v2.message import (
    CharsetPolicy,
    decode_message,
    normalise_line_endings,
    peek_header,
    read_header,
)

log = logging.getLogger(__name__)


class Worker:
    """Claims and processes inbox messages.

    Args:
        repository: the inbox.
        processor: what to do with each message.
        settings: retry, lease and batch settings.
        audit: where processed/failed records go (written synchronously: off the ACK path).
        name: this worker's name in the audit trail.
    """

    def __init__(
        self,
        repository: InboxRepository,
        processor: ResultProcessor,
        settings: Hl7Settings,
        *,
        audit: AuditTrail,
        name: str = "hl7-worker",
    ) -> None:
        self._repo = repository
        self._processor = processor
        self._settings = settings
        self._audit = audit
        self._name = name
        self._charsets = CharsetPolicy(settings.default_charset, settings.fallback_charsets)
        self._responder = Responder(settings.responder_application, settings.responder_facility)
        self._acks = ApplicationAckSender(repository, settings, audit=audit, name=name)

    def retry_delay(self, attempts: int) -> timedelta:
        """How long a message waits after its ``attempts``-th transient failure:
        ``retry_base_seconds`` doubling per attempt, at most ``retry_max_seconds``."""
        seconds = self._settings.retry_base_seconds * (2 ** max(attempts - 1, 0))
        return timedelta(seconds=min(seconds, self._settings.retry_max_seconds))

    def process_id(self, message_id: int) -> tuple[str, int]:
        """Process one message by id (the ``hl7.process`` job); return what happened and how
        many application ACK deliveries were attempted after it.

        ``processed`` / ``not-processed`` / ``failed``: the inbox row holds the outcome (also
        when an earlier run already recorded it: a redelivered job changes nothing);
        ``retry``: a transient error was recorded, try again later; ``busy``: another worker
        holds the message's claim; ``lost``: this claim expired before the outcome was written;
        ``missing``: no such message.
        """
        claimed, status = self._repo.claim_one(
            message_id, now=utcnow(), lease=timedelta(seconds=self._settings.lease_seconds)
        )
        if claimed is None:
            if status is None:
                return "missing", 0
            return ("busy" if status == "processing" else status), 0
        outcome = self._process(claimed)
        # Deliver application ACKs now rather than at the next periodic sweep (best effort:
        # a failure is retried by the sweep).
        try:
            acks = self._acks.deliver_due(utcnow())
        except (DatabaseError, SQLAlchemyError):
            log.warning("HL7 application ACK delivery deferred: database unavailable")
            acks = 0
        return outcome, acks

    def deliver_application_acks(self) -> int:
        """Attempt the due application ACK deliveries once (the periodic sweep)."""
        return self._acks.deliver_due(utcnow())

    def _process(self, claimed: ClaimedMessage) -> str:
        header = None
        try:
            decoded = decode_message(claimed.raw, self._charsets)
            text = decoded.text
            if self._settings.normalise_line_endings:
                text = normalise_line_endings(text)
            header = read_header(text)
            inbound = InboundMessage(claimed.id, header, text, claimed.attempts)
            with Session(self._repo.engine) as session:
                result = self._processor.process(inbound, session)
                ok = self._record_result(session, claimed, inbound, result)
                if ok:
                    session.commit()
                else:
                    session.rollback()
        except TransientProcessingError as exc:
            return self._retry_or_fail(claimed, str(exc) or type(exc).__name__)
        except (OperationalError, DatabaseError) as exc:
            return self._retry_or_fail(claimed, f"database unavailable ({type(exc).__name__})")
        except Hl7Error as exc:
            self._fail(claimed, header, exc.reason, code=exc.code, location=exc.location)
            return "failed"
        except Exception as exc:
            log.exception("HL7 processing error", extra={"control_id": claimed.control_id})
            self._fail(claimed, header, f"internal error ({type(exc).__name__})")
            return "failed"
        if not ok:
            log.warning("HL7 claim lost (lease expired)", extra={"control_id": claimed.control_id})
            return "lost"
        self._audit_safe(
            action="E",
            event_type="hl7.processed",
            event_subtype=result.status,
            outcome=Outcome.MINOR_FAILURE if result.errors else Outcome.SUCCESS,
            control_id=claimed.control_id,
            details={
                "inboxId": claimed.id,
                "messageType": claimed.message_type,
                "variants": len(result.summary.get("variants", [])),
                "problems": len(result.errors),
                "resultRef": result.result_ref,
            },
        )
        return result.status

    def _record_result(
        self,
        session: Session,
        claimed: ClaimedMessage,
        inbound: InboundMessage,
        result: ProcessingResult,
    ) -> bool:
        outcome = AckOutcome.ERROR if result.errors else AckOutcome.ACCEPT
        app_ack = self._application_ack(inbound, outcome, result.errors)
        return self._repo.finish(
            session,
            claimed,
            status=result.status,
            now=utcnow(),
            last_error=result.reason,
            result=result.summary or None,
            result_ref=result.result_ref,
            application_ack=app_ack,
            application_ack_destination=self._route(claimed),
        )

    def _route(self, claimed: ClaimedMessage) -> str | None:
        return route_for(self._settings, claimed.sending_application, claimed.sending_facility)

    def _application_ack(
        self, inbound: InboundMessage, outcome: AckOutcome, errors: list[str]
    ) -> bytes | None:
        # HL7 v2.5.1 ch. 2.9.3: enhanced mode, MSH-16 decides whether an application ACK is due.
        code = application_ack_code(inbound.header, outcome)
        if code is None:
            return None
        ack_errors = tuple(
            AckError(reason=e, code=APPLICATION_INTERNAL_ERROR, severity="W") for e in errors[:20]
        )
        text = build_ack(inbound.header, code, errors=ack_errors, responder=self._responder)
        return encode_ack(text, inbound.header)

    def _retry_or_fail(self, claimed: ClaimedMessage, reason: str) -> str:
        if claimed.attempts >= self._settings.max_attempts:
            self._fail(claimed, None, f"{reason}; gave up after {claimed.attempts} attempts")
            return "failed"
        now = utcnow()
        with Session(self._repo.engine) as session:
            if self._repo.finish(
                session,
                claimed,
                status="received",
                now=now,
                last_error=reason,
                next_attempt_at=now + self.retry_delay(claimed.attempts),
            ):
                session.commit()
        log.warning(
            "HL7 processing will be retried",
            extra={"control_id": claimed.control_id, "attempt": claimed.attempts},
        )
        return "retry"

    def _fail(
        self,
        claimed: ClaimedMessage,
        header: Any,
        reason: str,
        *,
        code: str = APPLICATION_INTERNAL_ERROR,
        location: str = "",
    ) -> None:
        app_ack = None
        header = header or peek_header(claimed.raw)
        if header is not None:
            ack_code = application_ack_code(header, AckOutcome.ERROR)
            if ack_code is not None:
                text = build_ack(
                    header,
                    ack_code,
                    errors=(AckError(reason=reason, code=code, location=location),),
                    responder=self._responder,
                )
                app_ack = encode_ack(text, header)
        try:
            with Session(self._repo.engine) as session:
                if self._repo.finish(
                    session,
                    claimed,
                    status="failed",
                    now=utcnow(),
                    last_error=reason,
                    application_ack=app_ack,
                    application_ack_destination=self._route(claimed),
                ):
                    session.commit()
        except OperationalError:
            log.warning("HL7 failure could not be recorded; the lease will expire and retry")
            return
        log.warning("HL7 message failed", extra={"control_id": claimed.control_id})
        self._audit_safe(
            action="E",
            event_type="hl7.failed",
            outcome=Outcome.SERIOUS_FAILURE,
            outcome_desc=reason,
            control_id=claimed.control_id,
            details={"inboxId": claimed.id, "messageType": claimed.message_type},
        )

    def _audit_safe(self, **record: Any) -> None:
        try:
            self._audit.record(agent_who=self._name, agent_type="system", **record)
        except DatabaseError:
            log.exception("HL7 worker audit record could not be written")
