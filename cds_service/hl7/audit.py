"""Audit records for HL7 events, written off the ACK path by a background thread.

The listener must answer within the sender's timeout, so its audit records (received, ACK sent)
are queued and appended in batches by one thread through :meth:`AuditTrail.record_many`; the
inbox row itself is committed before the ACK. Records hold the control id and sender, never the
message.

The inbox row is the write-ahead log of its ``hl7.received`` record: the batch that appends the
record sets the row's ``audited_at`` in the same transaction (only where it is still NULL, under
the append lock, so a record is written exactly once). A process killed with SIGKILL loses the
queue, not the rows: at start-up :func:`recover_received_records` writes an ``hl7.received``
record (subtype ``recovered``) for every row still without one. ``hl7.ack-sent`` records of a
killed process are not recovered: whether an ACK left the socket before the kill is unknowable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Final

from sqlalchemy import Connection, func, select, update

from cds_service.audit import AuditTrail, Outcome
from cds_service.db.base import utcnow
from cds_service.errors import DatabaseError
from cds_service.models.hl7 import Hl7InboxMessage

log = logging.getLogger(__name__)

_STOP: Final = object()
MAX_QUEUED: Final = 100_000
BATCH: Final = 500
FLUSH_SECONDS: Final = 0.25
RECOVERY_BATCH: Final = 1000
T = Hl7InboxMessage

#: A queued record: the inbox id whose ``audited_at`` it settles (None: not a WAL record) and
#: the keyword arguments of :meth:`AuditTrail.record`.
_Item = tuple[int | None, dict[str, Any]]


def _settle(items: list[_Item]) -> Any:
    """The ``record_many`` callable for ``items``: mark their rows audited (where still NULL)
    and keep the records whose row this transaction settled."""

    def records(conn: Connection) -> list[dict[str, Any]]:
        ids = [inbox_id for inbox_id, _ in items if inbox_id is not None]
        settled: set[int] = set()
        if ids:
            settled = set(
                conn.execute(
                    update(T)
                    .where(T.id.in_(ids), T.audited_at.is_(None))
                    .values(audited_at=utcnow())
                    .returning(T.id)
                ).scalars()
            )
        return [record for inbox_id, record in items if inbox_id is None or inbox_id in settled]

    return records


class AuditSink:
    """Queue of ``AuditTrail.record`` calls, appended in order by one daemon thread."""

    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=MAX_QUEUED)
        self._thread = threading.Thread(target=self._run, name="hl7-audit", daemon=True)
        self._thread.start()

    @property
    def trail(self) -> AuditTrail:
        return self._trail

    def submit(self, *, wal_inbox_id: int | None = None, **record: Any) -> None:
        """Queue one record (the keyword arguments of :meth:`AuditTrail.record`);
        ``wal_inbox_id``: the inbox row whose ``audited_at`` this record settles."""
        try:
            self._queue.put((wal_inbox_id, record), timeout=5)
        except queue.Full:
            log.exception(
                "audit queue full; HL7 audit record dropped",
                extra={
                    "event_type": record.get("event_type"),
                    "control_id": record.get("control_id"),
                },
            )

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            # Gather for up to FLUSH_SECONDS into one transaction: one append lock and one
            # commit for many records keeps the audit writer off the listener's back (at one
            # message at a time, a transaction per record halved the listener's rate).
            deadline = time.monotonic() + FLUSH_SECONDS
            while len(batch) < BATCH and batch[-1] is not _STOP:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [item for item in batch if item is not _STOP]
            self._write(batch)

    def _write(self, batch: list[_Item]) -> None:
        if not batch:
            return
        try:
            self._trail.record_many(_settle(batch))
        except DatabaseError:
            # One bad batch must not take the others with it: write them one by one.
            for item in batch:
                self._write_one(item)

    def _write_one(self, item: _Item) -> None:
        record = item[1]
        try:
            self._trail.record_many(_settle([item]))
        except DatabaseError:
            log.exception(
                "HL7 audit record could not be written",
                extra={
                    "event_type": record.get("event_type"),
                    "control_id": record.get("control_id"),
                },
            )


def recover_received_records(trail: AuditTrail, *, up_to_id: int | None = None) -> int:
    """Write the ``hl7.received`` record of every inbox row that has none (``audited_at IS
    NULL``, ``id <= up_to_id``), marked as recovered; return how many.

    Run at listener start-up before it accepts connections, bounded by the highest id then, so
    rows of the new process (whose records are still queued) are left to its own writer. Rows
    of another listener sharing the database may be settled here first; its writer then drops
    its own record (exactly one record per row either way).
    """
    if up_to_id is None:
        with trail.engine.connect() as conn:
            up_to_id = conn.execute(select(func.max(T.id))).scalar()
        if up_to_id is None:
            return 0
    total = 0
    while True:
        found = 0

        def records(conn: Connection) -> list[dict[str, Any]]:
            nonlocal found
            rows = conn.execute(
                select(
                    T.id,
                    T.sending_application,
                    T.sending_facility,
                    T.control_id,
                    T.message_type,
                    T.size,
                    T.received_at,
                    T.remote_addr,
                )
                .where(T.audited_at.is_(None), T.id <= up_to_id)
                .order_by(T.id)
                .limit(RECOVERY_BATCH)
            ).all()
            found = len(rows)
            if rows:
                conn.execute(
                    update(T).where(T.id.in_([r.id for r in rows])).values(audited_at=utcnow())
                )
            return [
                {
                    "action": "C",
                    "event_type": "hl7.received",
                    "event_subtype": "recovered",
                    "outcome": Outcome.SUCCESS,
                    "outcome_desc": "written at listener start-up from the inbox row: the "
                    "process that stored the message stopped before its record was written",
                    "agent_who": f"hl7:{r.sending_application}|{r.sending_facility}"[:512],
                    "agent_type": "system",
                    "remote_addr": r.remote_addr,
                    "control_id": r.control_id,
                    "entities": [{"type": "Hl7InboxMessage", "id": str(r.id)}],
                    "details": {
                        "messageType": r.message_type,
                        "inboxId": r.id,
                        "bytes": r.size,
                        "receivedAt": r.received_at.isoformat(),
                        "recovered": True,
                    },
                }
                for r in rows
            ]

        trail.record_many(records)
        total += found
        if found < RECOVERY_BATCH:
            return total
