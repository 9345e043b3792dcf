"""Queries on ``hl7_inbox_messages``; driver errors become :class:`DatabaseError`.

Each call is its own short transaction on the engine: the listener commits a message before it
sends the ACK, and a claim is committed before processing starts.

Every new ``received`` message is stored together with its ``hl7.process`` job in one
transaction (issue 17's transactional outbox, with a broker or without): a message that was
ACKed always has the job that processes it, whichever executor runs jobs (in-process threads or
Celery workers), and after a crash the job is still there.

Claiming (several workers, several processes): the job system hands each ``hl7.process`` job
to one worker; the job then claims its message by id with a conditional
``UPDATE … WHERE status = 'received'`` (or an expired ``processing`` lease), which succeeds for
exactly one claimer even when two runs of one job overlap. A claim carries the attempt number as
a fencing token, so a worker whose lease expired cannot overwrite the outcome of the worker that
claimed the message after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cds_service.errors import ConflictError, DatabaseError, NotFoundError
from cds_service.models.hl7 import Hl7InboxMessage
from cds_service.models.jobs import BackgroundJob

T = Hl7InboxMessage


@dataclass(frozen=True, slots=True)
class NewMessage:
    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    version: str
    charset: str | None
    accept_ack_type: str
    application_ack_type: str
    raw: bytes
    received_at: datetime
    remote_addr: str | None
    status: str
    last_error: str | None
    ack: bytes | None


@dataclass(frozen=True, slots=True)
class StoreResult:
    id: int
    duplicate: bool
    #: The ACK to send: the one stored with the (first) message.
    ack: bytes | None
    status: str


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    id: int
    attempts: int
    raw: bytes
    control_id: str
    message_type: str
    sending_application: str
    sending_facility: str


@dataclass(frozen=True, slots=True)
class PendingApplicationAck:
    id: int
    control_id: str
    ack: bytes
    destination: str
    attempts: int


@contextmanager
def _db_errors(what: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise DatabaseError(f"the HL7 inbox could not be {what}") from exc


#: Upper bound of an ``hl7.process`` job's attempts; the inbox's own ``max_attempts``
#: (``ONCOCDS_HL7__MAX_ATTEMPTS``, default 5) gives up first.
JOB_MAX_ATTEMPTS = 25


class InboxRepository:
    """The inbox's queries (sync; call them from a thread in asyncio code).

    Args:
        engine: the database.
        job_max_attempts: the ``max_attempts`` of the ``hl7.process`` job stored with each new
            ``received`` message.
    """

    def __init__(self, engine: Engine, *, job_max_attempts: int = JOB_MAX_ATTEMPTS) -> None:
        self._engine = engine
        self.job_max_attempts = job_max_attempts
        self._is_postgres = engine.dialect.name == "postgresql"
        # Built once so SQLAlchemy's compiled cache serves every call; several rows go out as
        # one multi-row INSERT (SQLAlchemy 2 "insertmanyvalues").
        dialect_insert = pg_insert if self._is_postgres else sqlite_insert
        self._insert_with_status = (
            dialect_insert(T)
            .on_conflict_do_nothing(
                index_elements=["sending_application", "sending_facility", "control_id"]
            )
            .returning(T.id, T.sending_application, T.sending_facility, T.control_id, T.status)
        )
        self._insert_jobs = dialect_insert(BackgroundJob).on_conflict_do_nothing(
            index_elements=["key"]
        )

    @property
    def engine(self) -> Engine:
        return self._engine

    # ------------------------------------------------------------------ listener

    def store(self, message: NewMessage) -> StoreResult:
        """Store one message; see :meth:`store_many`."""
        return self.store_many([message])[0]

    def store_many(self, messages: Sequence[NewMessage]) -> list[StoreResult]:
        """Insert ``messages`` and commit; a duplicate (same MSH-3, MSH-4, MSH-10
        as a stored message or an earlier one in the batch) is not stored again and gets the
        first message's ACK.

        ``INSERT … ON CONFLICT DO NOTHING RETURNING``, one statement for the batch (up to
        SQLAlchemy's insertmanyvalues page of 1000 rows; the listener's batches are the frames
        of one 64 KiB read), then the ``hl7.process`` jobs of the new ``received`` messages,
        committed together (on PostgreSQL the listener uses :mod:`.store`'s single statement).

        Raises:
            DatabaseError: the database is unavailable. No positive ACK may be sent for any
                message of the batch (a resend of one that a committed page did store is then
                a duplicate and gets its stored ACK).
        """
        inserted = self._insert_with_jobs([self._values(m) for m in messages])
        keys = [(m.sending_application, m.sending_facility, m.control_id) for m in messages]
        existing: dict[tuple[str, str, str], Any] = {}
        missing = [k for k in keys if k not in inserted]
        if missing:
            with _db_errors("read"), self._engine.connect() as conn:
                for key in set(missing):
                    row = conn.execute(
                        select(T.id, T.ack, T.status).where(
                            T.sending_application == key[0],
                            T.sending_facility == key[1],
                            T.control_id == key[2],
                        )
                    ).first()
                    if row is None:
                        raise DatabaseError("the HL7 inbox refused a message")
                    existing[key] = row
        results: list[StoreResult] = []
        first_in_batch: dict[tuple[str, str, str], StoreResult] = {}
        for message, key in zip(messages, keys, strict=True):
            if key in first_in_batch:
                first = first_in_batch[key]
                results.append(StoreResult(first.id, True, first.ack, first.status))
            elif key in inserted:
                result = StoreResult(inserted[key], False, message.ack, message.status)
                first_in_batch[key] = result
                results.append(result)
            else:
                row = existing[key]
                results.append(StoreResult(row.id, True, row.ack, row.status))
        return results

    def _insert_with_jobs(self, rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], int]:
        """Insert the messages and the ``hl7.process`` job of each new ``received`` one, and
        commit both together (the transactional outbox)."""
        from cds_service.db.base import utcnow

        with _db_errors("written"), self._engine.begin() as conn:
            inserted: dict[tuple[str, str, str], int] = {}
            new_received: list[int] = []
            result: Any = conn.execute(self._insert_with_status, rows)
            for row in result:
                inserted[(row[1], row[2], row[3])] = row[0]
                if row[4] == "received":
                    new_received.append(row[0])
            if new_received:
                now = utcnow()
                conn.execute(
                    self._insert_jobs, [self._job_values(i, f"hl7:{i}", now) for i in new_received]
                )
        return inserted

    def _job_values(self, inbox_id: int, key: str, now: datetime) -> dict[str, Any]:
        return {
            "kind": "hl7.process",
            "queue": "hl7",
            "key": key,
            "payload": {"inboxId": inbox_id},
            "status": "queued",
            "attempts": 0,
            "max_attempts": self.job_max_attempts,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }

    @staticmethod
    def _values(message: NewMessage) -> dict[str, Any]:
        return {
            "sending_application": message.sending_application,
            "sending_facility": message.sending_facility,
            "control_id": message.control_id,
            "message_type": message.message_type,
            "version": message.version,
            "charset": message.charset,
            "accept_ack_type": message.accept_ack_type,
            "application_ack_type": message.application_ack_type,
            "raw": message.raw,
            "size": len(message.raw),
            "received_at": message.received_at,
            "remote_addr": message.remote_addr,
            "status": message.status,
            "attempts": 0,
            "next_attempt_at": message.received_at if message.status == "received" else None,
            "locked_until": None,
            "last_error": message.last_error,
            "ack": message.ack,
        }

    # ------------------------------------------------------------------ worker

    def claim_one(
        self, message_id: int, *, now: datetime, lease: timedelta
    ) -> tuple[ClaimedMessage | None, str | None]:
        """Claim one message by id for its ``hl7.process`` job (the job system decides when it
        runs, so ``next_attempt_at`` is not consulted) and commit the claim.

        Returns the claim, or None with the message's status when it cannot be claimed now
        (finished, or ``processing`` under a live lease of another worker); (None, None) when
        there is no such message.
        """
        claimable = or_(
            T.status == "received", and_(T.status == "processing", T.locked_until < now)
        )
        with _db_errors("claimed"), self._engine.begin() as conn:
            row = conn.execute(
                update(T)
                .where(T.id == message_id, claimable)
                .values(status="processing", attempts=T.attempts + 1, locked_until=now + lease)
                .returning(
                    T.id,
                    T.attempts,
                    T.raw,
                    T.control_id,
                    T.message_type,
                    T.sending_application,
                    T.sending_facility,
                )
            ).first()
            if row is not None:
                return ClaimedMessage(*row), None
            status = conn.execute(select(T.status).where(T.id == message_id)).scalar()
        return None, status

    def finish(
        self,
        session: Session,
        claimed: ClaimedMessage,
        *,
        status: str,
        now: datetime,
        last_error: str | None = None,
        result: dict[str, Any] | None = None,
        result_ref: str | None = None,
        application_ack: bytes | None = None,
        application_ack_destination: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """Record the outcome of a claim in ``session`` (the caller commits); False when the
        claim was lost (its lease expired and another worker took the message)."""
        values: dict[str, Any] = {
            "status": status,
            "locked_until": None,
            "last_error": last_error[:512] if last_error else None,
            "next_attempt_at": next_attempt_at,
        }
        if status in ("processed", "not-processed"):
            values.update(
                result=result,
                result_ref=result_ref,
                application_ack=application_ack,
                processed_at=now,
            )
        elif application_ack is not None:
            values["application_ack"] = application_ack
        if application_ack is not None:
            # Delivered by the worker (deliver_application_acks) when the sender has a route.
            values.update(
                application_ack_status="pending" if application_ack_destination else "no-route",
                application_ack_destination=application_ack_destination,
                application_ack_attempts=0,
                application_ack_next_at=now if application_ack_destination else None,
                application_ack_error=None,
            )
        outcome = session.execute(
            update(T)
            .where(T.id == claimed.id, T.status == "processing", T.attempts == claimed.attempts)
            .values(values)
        )
        return bool(getattr(outcome, "rowcount", 0) == 1)

    # ------------------------------------------------------------------ application ACKs

    def claim_application_acks(
        self, *, limit: int, now: datetime, lease: timedelta
    ) -> list[PendingApplicationAck]:
        """Claim due application ACK deliveries: each claim pushes the next attempt time by
        ``lease`` (a dead worker's claim comes back then) and counts the attempt, which fences
        the outcome (:meth:`finish_application_ack`)."""
        due = and_(T.application_ack_status == "pending", T.application_ack_next_at <= now)
        claimed: list[PendingApplicationAck] = []
        with _db_errors("claimed"), self._engine.begin() as conn:
            candidates = select(T.id).where(due).order_by(T.id).limit(limit)
            if self._is_postgres:
                candidates = candidates.with_for_update(skip_locked=True)
            for message_id in list(conn.execute(candidates).scalars()):
                row = conn.execute(
                    update(T)
                    .where(T.id == message_id, due)
                    .values(
                        application_ack_attempts=T.application_ack_attempts + 1,
                        application_ack_next_at=now + lease,
                    )
                    .returning(
                        T.id,
                        T.control_id,
                        T.application_ack,
                        T.application_ack_destination,
                        T.application_ack_attempts,
                    )
                ).first()
                if row is not None and row[2] is not None and row[3] is not None:
                    claimed.append(
                        PendingApplicationAck(row[0], row[1], row[2], row[3], int(row[4] or 0))
                    )
        return claimed

    def finish_application_ack(
        self,
        pending: PendingApplicationAck,
        *,
        status: str,
        error: str | None,
        next_at: datetime | None,
    ) -> bool:
        """Record one delivery attempt's outcome; False when the claim was taken over."""
        with _db_errors("updated"), self._engine.begin() as conn:
            outcome = conn.execute(
                update(T)
                .where(
                    T.id == pending.id,
                    T.application_ack_status == "pending",
                    T.application_ack_attempts == pending.attempts,
                )
                .values(
                    application_ack_status=status,
                    application_ack_error=error[:512] if error else None,
                    application_ack_next_at=next_at,
                )
            )
            return bool(getattr(outcome, "rowcount", 0) == 1)

    # ------------------------------------------------------------------ operators

    def list_messages(
        self, *, status: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> Sequence[T]:
        stmt = select(T).order_by(T.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(T.status == status)
        if before_id is not None:
            stmt = stmt.where(T.id < before_id)
        with _db_errors("read"), Session(self._engine) as session:
            rows = session.scalars(stmt).all()
            session.expunge_all()
        return rows

    def get(self, message_id: int) -> T:
        with _db_errors("read"), Session(self._engine) as session:
            row = session.get(T, message_id)
            if row is None:
                raise NotFoundError(f"HL7 inbox message {message_id} not found")
            session.expunge(row)
        return row

    def replay(self, message_id: int, *, now: datetime, force: bool = False) -> T:
        """Queue a message for processing again (failed or not-processed; processed with force).

        Raises:
            NotFoundError: no such message.
            ConflictError: it is waiting or being processed, or processed without ``force``.
        """
        allowed = ["failed", "not-processed"] + (["processed"] if force else [])
        with _db_errors("updated"), self._engine.begin() as conn:
            outcome = conn.execute(
                update(T)
                .where(T.id == message_id, T.status.in_(allowed))
                .values(status="received", next_attempt_at=now, attempts=0, locked_until=None)
            )
            changed = getattr(outcome, "rowcount", 0) == 1
            if changed:
                # The replay is a new hl7.process job, committed with the status.
                key = f"hl7:{message_id}:replay:{now.isoformat()}"
                conn.execute(insert(BackgroundJob).values(self._job_values(message_id, key, now)))
        row = self.get(message_id)
        if not changed:
            hint = (
                " (use force to reprocess a processed message)" if row.status == "processed" else ""
            )
            raise ConflictError(
                f"HL7 inbox message {message_id} is {row.status} and cannot be replayed{hint}"
            )
        return row

    def failed_ids(self) -> list[int]:
        with _db_errors("read"), self._engine.connect() as conn:
            return list(
                conn.execute(select(T.id).where(T.status == "failed").order_by(T.id)).scalars()
            )
