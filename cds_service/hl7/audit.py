"""Audit records for HL7 events, written off the ACK path by a background thread.

The listener must answer within the sender's timeout, so its audit records (received, ACK sent)
are queued and appended by one thread through :meth:`AuditTrail.record`; the inbox row itself is
committed before the ACK. The queue is drained on shutdown; a process killed with SIGKILL can
lose the records still queued (never the inbox row). Records hold the control id and sender,
never the message.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Final

from cds_service.audit import AuditTrail
from cds_service.errors import DatabaseError

log = logging.getLogger(__name__)

_STOP: Final = object()
MAX_QUEUED: Final = 100_000
BATCH: Final = 500
FLUSH_SECONDS: Final = 0.25


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

    def submit(self, **record: Any) -> None:
        """Queue one record (the keyword arguments of :meth:`AuditTrail.record`)."""
        try:
            self._queue.put(record, timeout=5)
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

    def _write(self, batch: list[Any]) -> None:
        if not batch:
            return
        try:
            self._trail.record_many(batch)
        except DatabaseError:
            # One bad batch must not take the others with it: write them one by one.
            for record in batch:
                self._write_one(record)

    def _write_one(self, record: Any) -> None:
        try:
            self._trail.record(**record)
        except DatabaseError:
            log.exception(
                "HL7 audit record could not be written",
                extra={
                    "event_type": record.get("event_type"),
                    "control_id": record.get("control_id"),
                },
            )
