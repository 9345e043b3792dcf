"""Appending to and verifying the audit chain.

Records are written in their own short transaction, not in the caller's request session: an
audit record must survive the rollback of the work it describes (a failed authentication, a
request that errors). Appends are serialised so that the chain stays linear with any number of
writers in any number of processes: on PostgreSQL by a transaction-scoped advisory lock, on
SQLite by the database write lock (a writer that lost the race retries).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any, Final, Literal, TypedDict

from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from cds_service.audit.chain import GENESIS_HASH, HASHED_FIELDS, chain_hash
from cds_service.db.base import utcnow
from cds_service.errors import DatabaseError
from cds_service.models.audit import AuditRecord

log = logging.getLogger(__name__)

Action = Literal["C", "R", "U", "D", "E"]
AgentType = Literal["client", "user", "system"]

#: Key of the PostgreSQL advisory lock that serialises appends (any constant unique to OncoCDS).
_APPEND_LOCK_KEY: Final = 0x0C0DA0D1
_SQLITE_RETRIES: Final = 200


class Outcome(IntEnum):
    """FHIR AuditEvent.outcome (http://hl7.org/fhir/audit-event-outcome)."""

    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12


class AuditEntity(TypedDict, total=False):
    """An entity a record refers to, by identifier only."""

    type: str
    id: str
    role: str


@dataclass(frozen=True, slots=True)
class RecordedRef:
    """What :meth:`AuditTrail.record` returns: where the record landed."""

    id: str
    seq: int
    record_hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    id: str
    reason: str


@dataclass(slots=True)
class VerificationResult:
    checked: int = 0
    first_break: ChainBreak | None = None
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.first_break is None


def _is_sqlite_race(exc: IntegrityError | OperationalError) -> bool:
    message = str(exc.orig).lower()
    return "unique" in message or "locked" in message or "busy" in message


#: Rows to append: field dicts, or a function of the append transaction's connection that
#: returns records (the keyword arguments of ``AuditTrail.record``).
_Rows = list[dict[str, Any]] | Callable[[Connection], Sequence[Mapping[str, Any]]]


@dataclass(slots=True, eq=False)
class _Waiter:
    """One caller's rows in the group-commit queue, and what became of them."""

    rows: _Rows
    event_type: str
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    refs: list[RecordedRef] | None = None
    error: BaseException | None = None


class AuditTrail:
    """The one way features write to, and verify, the audit trail."""

    def __init__(self, engine: Engine, *, source_observer: str) -> None:
        self._engine = engine
        self._observer = source_observer
        self._is_postgres = engine.dialect.name == "postgresql"
        self._mutex = threading.Lock()
        self._queue: list[_Waiter] = []
        self._leading = False

    @property
    def engine(self) -> Engine:
        return self._engine

    def record(
        self,
        *,
        action: Action,
        event_type: str,
        outcome: Outcome = Outcome.SUCCESS,
        agent_who: str,
        agent_type: AgentType = "client",
        event_subtype: str | None = None,
        outcome_desc: str | None = None,
        agent_user: str | None = None,
        tenant: str | None = None,
        patient_id: str | None = None,
        entities: list[AuditEntity] | None = None,
        hook_instance: str | None = None,
        control_id: str | None = None,
        purpose_of_use: str | None = None,
        request_id: str | None = None,
        remote_addr: str | None = None,
        details: Mapping[str, Any] | None = None,
        recorded: datetime | None = None,
    ) -> RecordedRef:
        """Append one record to the chain and commit it.

        Args are the BALP/AuditEvent fields; pass identifiers only (ids, codes, counts, reasons),
        never clinical content or tokens.

        Returns:
            The new record's id, chain position and hash.

        Raises:
            DatabaseError: the record could not be written (the caller must not proceed silently).
        """
        fields = self._fields(
            action=action,
            event_type=event_type,
            outcome=outcome,
            agent_who=agent_who,
            agent_type=agent_type,
            event_subtype=event_subtype,
            outcome_desc=outcome_desc,
            agent_user=agent_user,
            tenant=tenant,
            patient_id=patient_id,
            entities=entities,
            hook_instance=hook_instance,
            control_id=control_id,
            purpose_of_use=purpose_of_use,
            request_id=request_id,
            remote_addr=remote_addr,
            details=details,
            recorded=recorded,
        )
        return self._append_with_retry([fields], event_type)[0]

    def record_many(
        self,
        records: Sequence[Mapping[str, Any]] | Callable[[Connection], Sequence[Mapping[str, Any]]],
    ) -> list[RecordedRef]:
        """Append several records (each the keyword arguments of :meth:`record`) in one
        transaction under one append lock, in order. For high-rate writers (the HL7 listener);
        all are written or none.

        ``records`` may be a function of the transaction's connection, called after the append
        lock is taken (again on a retried attempt): what it writes commits together with the
        records it returns, or not at all. The HL7 listener marks its inbox rows as audited
        this way, so a row and its audit record can never disagree.

        Raises:
            DatabaseError: the records could not be written.
        """
        if callable(records):
            return self._append_with_retry(records, "batch")
        if not records:
            return []
        rows = [self._fields(**record) for record in records]
        return self._append_with_retry(rows, str(records[0].get("event_type")))

    def _fields(
        self,
        *,
        action: Action,
        event_type: str,
        outcome: Outcome = Outcome.SUCCESS,
        agent_who: str,
        agent_type: AgentType = "client",
        event_subtype: str | None = None,
        outcome_desc: str | None = None,
        agent_user: str | None = None,
        tenant: str | None = None,
        patient_id: str | None = None,
        entities: list[AuditEntity] | None = None,
        hook_instance: str | None = None,
        control_id: str | None = None,
        purpose_of_use: str | None = None,
        request_id: str | None = None,
        remote_addr: str | None = None,
        details: Mapping[str, Any] | None = None,
        recorded: datetime | None = None,
    ) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "recorded": recorded or utcnow(),
            "action": action,
            "event_type": event_type,
            "event_subtype": event_subtype,
            "outcome": int(outcome),
            "outcome_desc": outcome_desc[:512] if outcome_desc else None,
            "agent_type": agent_type,
            "agent_who": agent_who,
            "agent_user": agent_user,
            "tenant": tenant,
            "patient_id": patient_id,
            "entities": [dict(e) for e in entities or []],
            "hook_instance": hook_instance,
            "control_id": control_id,
            "purpose_of_use": purpose_of_use,
            "source_observer": self._observer,
            "request_id": request_id,
            "remote_addr": remote_addr,
            "details": dict(details or {}),
        }

    def _append_with_retry(self, rows: _Rows, event_type: str) -> list[RecordedRef]:
        """Append with group commit: a caller that finds another append under way queues its
        rows, and the thread appending takes every queued caller's rows into its next
        transaction (one lock, one commit), then hands the lead to the next waiter.

        Under concurrent requests each append used to wait for the append lock in turn, and
        the thread holding it waited for the GIL between statements, so the lock was held for
        the length of other threads' work (bench/bench_patient_view.py: ~0.7 s of a call's 0.9
        s at 32 clients). If a shared transaction fails, each caller's rows are appended on
        their own, so one bad batch member fails alone.
        """
        me = _Waiter(rows, event_type)
        with self._mutex:
            self._queue.append(me)
            if not self._leading:
                self._leading = True
                me.lead = True
        if not me.lead:
            me.wake.wait()
        if me.lead and me.refs is None and me.error is None:
            self._lead()
        if me.error is not None:
            raise me.error
        assert me.refs is not None
        return me.refs

    def _lead(self) -> None:
        with self._mutex:
            batch, self._queue = self._queue, []
        try:
            self._commit(batch)
        finally:
            with self._mutex:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.set()
                else:
                    self._leading = False
            for waiter in batch:
                if waiter.refs is None and waiter.error is None:  # pragma: no cover - defensive
                    waiter.error = DatabaseError("the audit trail could not be written")
                if not waiter.lead:
                    waiter.wake.set()

    def _commit(self, batch: list[_Waiter]) -> None:
        if len(batch) > 1:
            counts: list[int] = []

            def together(conn: Connection) -> list[dict[str, Any]]:
                counts.clear()
                out: list[dict[str, Any]] = []
                for waiter in batch:
                    fields = self._fields_of(waiter.rows, conn)
                    counts.append(len(fields))
                    out.extend(fields)
                return out

            try:
                refs = self._append_retrying(together, "batch")
            except Exception:  # noqa: BLE001 - each member is tried on its own below
                log.info("audit group append failed; appending its members one by one")
            else:
                start = 0
                for waiter, count in zip(batch, counts, strict=True):
                    waiter.refs = refs[start : start + count]
                    start += count
                return
        for waiter in batch:
            try:
                waiter.refs = self._append_retrying(self._fields_fn(waiter.rows), waiter.event_type)
            except Exception as exc:  # noqa: BLE001 - handed to the caller that owns the rows
                waiter.error = exc

    def _fields_fn(self, rows: _Rows) -> Callable[[Connection], list[dict[str, Any]]]:
        def fields(conn: Connection) -> list[dict[str, Any]]:
            return self._fields_of(rows, conn)

        return fields

    def _fields_of(self, rows: _Rows, conn: Connection) -> list[dict[str, Any]]:
        if callable(rows):
            return [self._fields(**record) for record in rows(conn)]
        return rows

    def _append_retrying(
        self, rows: Callable[[Connection], list[dict[str, Any]]], event_type: str
    ) -> list[RecordedRef]:
        attempts = 0
        while True:
            attempts += 1
            try:
                return self._append(rows)
            except (IntegrityError, OperationalError) as exc:
                # Only SQLite loses append races (no advisory lock): another writer took the
                # seq (UNIQUE) or holds the write lock (locked/busy). Anything else is real.
                if self._is_postgres or attempts >= _SQLITE_RETRIES or not _is_sqlite_race(exc):
                    log.exception("audit append failed", extra={"event_type": event_type})
                    raise DatabaseError("the audit trail could not be written") from exc
                time.sleep(0.001 * min(attempts, 20))

    def _append(self, rows: Callable[[Connection], list[dict[str, Any]]]) -> list[RecordedRef]:
        refs: list[RecordedRef] = []
        with self._engine.begin() as conn:
            if self._is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK_KEY})
            fields_list = rows(conn)
            if not fields_list:
                return []
            last = conn.execute(
                select(AuditRecord.seq, AuditRecord.record_hash)
                .order_by(AuditRecord.seq.desc())
                .limit(1)
            ).first()
            seq = last.seq if last else 0
            prev_hash = last.record_hash if last else GENESIS_HASH
            chained = []
            for fields in fields_list:
                seq += 1
                row = {**fields, "seq": seq, "prev_hash": prev_hash}
                row["record_hash"] = chain_hash(prev_hash, row)
                prev_hash = row["record_hash"]
                chained.append(row)
                refs.append(RecordedRef(id=row["id"], seq=seq, record_hash=row["record_hash"]))
            conn.execute(insert(AuditRecord), chained)
        return refs

    # ------------------------------------------------------------------ reading

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(AuditRecord)).scalar_one())

    def iter_rows(
        self, conn: Connection, *, from_seq: int = 1, to_seq: int | None = None
    ) -> Generator[dict[str, Any], None, None]:
        """Rows as dicts in chain order, streamed in batches."""
        stmt = select(AuditRecord.__table__).where(AuditRecord.seq >= from_seq)
        if to_seq is not None:
            stmt = stmt.where(AuditRecord.seq <= to_seq)
        stmt = stmt.order_by(AuditRecord.seq).execution_options(yield_per=2000)
        # Closed explicitly so a caller that stops early leaves no server-side cursor open.
        with conn.execute(stmt) as result:
            for row in result:
                yield dict(row._mapping)

    def verify(self, *, from_seq: int = 1, to_seq: int | None = None) -> VerificationResult:
        """Recompute the chain and report the first record where it breaks.

        A record breaks the chain when its ``seq`` is not the successor of the one before (a
        record was deleted or reordered), its ``prev_hash`` is not the previous record's hash,
        or its ``record_hash`` does not match its content (it was altered).
        """
        result = VerificationResult()
        with self._engine.connect() as conn:
            expected_prev: str | None = None
            expected_seq = from_seq
            if from_seq > 1:
                before = conn.execute(
                    select(AuditRecord.record_hash).where(AuditRecord.seq == from_seq - 1)
                ).scalar_one_or_none()
                expected_prev = before
            else:
                expected_prev = GENESIS_HASH
            for row in self.iter_rows(conn, from_seq=from_seq, to_seq=to_seq):
                reason = self._check_row(row, expected_seq, expected_prev)
                if reason is not None:
                    brk = ChainBreak(seq=row["seq"], id=row["id"], reason=reason)
                    result.breaks.append(brk)
                    if result.first_break is None:
                        result.first_break = brk
                result.checked += 1
                result.last_seq = row["seq"]
                result.last_hash = row["record_hash"]
                expected_seq = row["seq"] + 1
                expected_prev = row["record_hash"]
        return result

    @staticmethod
    def _check_row(row: dict[str, Any], expected_seq: int, expected_prev: str | None) -> str | None:
        if row["seq"] != expected_seq:
            return f"sequence gap: expected seq {expected_seq}, found {row['seq']}"
        if expected_prev is not None and row["prev_hash"] != expected_prev:
            return "prev_hash does not match the previous record's hash"
        recomputed = chain_hash(row["prev_hash"], {k: row[k] for k in HASHED_FIELDS})
        if recomputed != row["record_hash"]:
            return "record content does not match its hash (altered)"
        return None
