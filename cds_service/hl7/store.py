"""How the listener stores messages before it ACKs them: the asyncio side of the inbox.

Two implementations of :class:`InboxStore`:

- :class:`ThreadedStore` (SQLite, the ``make run`` default, or any other database): the sync
  :meth:`InboxRepository.store_many` in a thread.
- :class:`PostgresGroupCommitStore` (PostgreSQL): one psycopg 3 ``AsyncConnection`` owned by
  the event loop and one writer task doing **group commit**. Every connection handler queues its
  messages and awaits their result; the writer takes everything queued, stores it with one
  autocommit multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (a prepared statement:
  one round trip, committed when it returns) and resolves each handler's future.
  Messages that arrive while that commit is in flight go into the next one, so one commit covers
  many connections. No pool checkout, no thread hop, no ORM on the ACK path.

Durability is unchanged: a future resolves only after PostgreSQL answered the statement, and in
autocommit mode it answers after the COMMIT (``synchronous_commit`` as the server has it, ``on``
by default). Any database error fails every message of the batch (:class:`DatabaseError`, so
the listener answers AE/CE, never a positive ACK) and drops the connection; the next batch
connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from typing import Any, Final, Protocol

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from cds_service.db.base import utcnow
from cds_service.errors import DatabaseError
from cds_service.hl7.repository import InboxRepository, NewMessage, StoreResult

log = logging.getLogger(__name__)

#: Largest batch one statement stores (the frames of many reads of many connections).
MAX_BATCH: Final = 1000
CONNECT_TIMEOUT_SECONDS: Final = 5

_Key = tuple[str, str, str]

_INSERT_HEAD: Final = sql.SQL(
    "INSERT INTO hl7_inbox_messages (sending_application, sending_facility, control_id, "
    "message_type, version, charset, accept_ack_type, application_ack_type, raw, size, "
    "received_at, remote_addr, status, attempts, next_attempt_at, last_error, ack) VALUES "
)
_INSERT_TAIL: Final = sql.SQL(
    " ON CONFLICT (sending_application, sending_facility, control_id) DO NOTHING"
    " RETURNING id, sending_application, sending_facility, control_id"
)
_ROW: Final = sql.SQL("(" + ", ".join(["%s"] * 17) + ")")


#: Jobs mode (issue 17): the same INSERT as a data-modifying CTE that also inserts one
#: ``hl7.process`` job per new ``received`` message, in the same statement and so the same
#: commit (the transactional outbox). Parameters after the rows: max_attempts, now.
_JOBS_HEAD: Final = sql.SQL("WITH m AS (") + _INSERT_HEAD
_JOBS_TAIL: Final = sql.SQL(
    " ON CONFLICT (sending_application, sending_facility, control_id) DO NOTHING"
    " RETURNING id, sending_application, sending_facility, control_id, status),"
    " j AS (INSERT INTO background_jobs (kind, queue, key, payload, status, attempts,"
    " max_attempts, next_attempt_at, created_at, updated_at)"
    " SELECT 'hl7.process', 'hl7', 'hl7:' || m.id, jsonb_build_object('inboxId', m.id),"
    " 'queued', 0, %s, t.now, t.now, t.now FROM m CROSS JOIN (SELECT %s::timestamptz AS now) t"
    " WHERE m.status = 'received' ON CONFLICT (key) DO NOTHING)"
    " SELECT id, sending_application, sending_facility, control_id FROM m"
)


@functools.lru_cache(maxsize=128)
def _insert_sql(rows: int, jobs: bool = False) -> sql.Composed:
    """The multi-row INSERT for ``rows`` messages. Scalar parameters, not ``unnest`` of arrays:
    psycopg dumps arrays element by element in Python, several times slower per message. One
    text per row count, so psycopg prepares each once (its cache holds 100)."""
    values = sql.SQL(", ").join([_ROW] * rows)
    if jobs:
        return _JOBS_HEAD + values + _JOBS_TAIL
    return _INSERT_HEAD + values + _INSERT_TAIL


_EXISTING: Final = """
SELECT m.id, m.sending_application, m.sending_facility, m.control_id, m.ack, m.status
FROM hl7_inbox_messages AS m
JOIN unnest(%(a)s::varchar[], %(f)s::varchar[], %(c)s::varchar[]) AS k(a, f, c)
  ON m.sending_application = k.a AND m.sending_facility = k.f AND m.control_id = k.c
"""


class InboxStore(Protocol):
    """Stores messages and returns once they are committed (or raises)."""

    async def store_many(self, messages: Sequence[NewMessage]) -> list[StoreResult]:
        """One result per message, in order.

        Raises:
            DatabaseError: nothing of the batch may be ACKed positively.
        """
        ...

    async def close(self) -> None: ...


class ThreadedStore:
    """The sync repository in a worker thread (SQLite, and the fallback for other engines)."""

    def __init__(self, repository: InboxRepository) -> None:
        self._repo = repository

    async def store_many(self, messages: Sequence[NewMessage]) -> list[StoreResult]:
        return await asyncio.to_thread(self._repo.store_many, messages)

    async def close(self) -> None:
        return None


def libpq_conninfo(engine: Engine) -> str:
    """The engine's URL as a libpq connection URI (drops SQLAlchemy's ``+psycopg``)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class _Batch:
    __slots__ = ("future", "messages")

    def __init__(
        self, messages: Sequence[NewMessage], future: asyncio.Future[list[StoreResult]]
    ) -> None:
        self.messages = messages
        self.future = future


class PostgresGroupCommitStore:
    """Group commit on one event-loop-owned psycopg connection (see the module docstring).

    Args:
        conninfo: a libpq connection string or URI.
        job_max_attempts: when set, each new ``received`` message gets its ``hl7.process``
            job (with this many attempts) in the same statement (jobs on a broker).
    """

    def __init__(self, conninfo: str, *, job_max_attempts: int | None = None) -> None:
        self._conninfo = conninfo
        self._job_max_attempts = job_max_attempts
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._queue: list[_Batch] = []
        self._ready = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        #: How many statements stored more than one caller's messages (for the bench and tests).
        self.group_commits = 0
        self.commits = 0

    @classmethod
    def for_engine(
        cls, engine: Engine, *, job_max_attempts: int | None = None
    ) -> PostgresGroupCommitStore:
        return cls(libpq_conninfo(engine), job_max_attempts=job_max_attempts)

    async def store_many(self, messages: Sequence[NewMessage]) -> list[StoreResult]:
        if self._writer is None:
            self._writer = asyncio.create_task(self._run(), name="hl7-inbox-writer")
        future: asyncio.Future[list[StoreResult]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Batch(messages, future))
        self._ready.set()
        return await future

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        for batch in self._queue:
            if not batch.future.done():
                batch.future.set_exception(DatabaseError("the HL7 inbox writer stopped"))
        self._queue.clear()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ writer task

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                batches = self._take()
                try:
                    results = await self._store([m for b in batches for m in b.messages])
                except DatabaseError as exc:
                    for batch in batches:
                        if not batch.future.done():
                            batch.future.set_exception(exc)
                    continue
                self.commits += 1
                if len(batches) > 1:
                    self.group_commits += 1
                start = 0
                for batch in batches:
                    end = start + len(batch.messages)
                    if not batch.future.done():  # its handler may have been cancelled
                        batch.future.set_result(results[start:end])
                    start = end

    def _take(self) -> list[_Batch]:
        taken: list[_Batch] = []
        count = 0
        while self._queue and (not taken or count + len(self._queue[0].messages) <= MAX_BATCH):
            batch = self._queue.pop(0)
            taken.append(batch)
            count += len(batch.messages)
        return taken

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._conninfo,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    # Prepared at the first execution: the statement text never changes.
                    prepare_threshold=0,
                )
            except psycopg.Error as exc:
                log.warning("HL7 inbox: cannot connect to PostgreSQL (%s)", type(exc).__name__)
                raise DatabaseError("the HL7 inbox could not be written") from exc
        return self._conn

    async def _store(self, messages: list[NewMessage]) -> list[StoreResult]:
        conn = await self._connection()
        keys: list[_Key] = [
            (m.sending_application, m.sending_facility, m.control_id) for m in messages
        ]
        try:
            params = _params(messages)
            jobs = self._job_max_attempts is not None
            if jobs:
                params += [self._job_max_attempts, utcnow()]
            cursor = await conn.execute(_insert_sql(len(messages), jobs), params)
            inserted = {(r[1], r[2], r[3]): int(r[0]) for r in await cursor.fetchall()}
            existing: dict[_Key, tuple[int, bytes | None, str]] = {}
            missing = sorted({k for k in keys if k not in inserted})
            if missing:
                cursor = await conn.execute(
                    _EXISTING,
                    {
                        "a": [k[0] for k in missing],
                        "f": [k[1] for k in missing],
                        "c": [k[2] for k in missing],
                    },
                )
                for row in await cursor.fetchall():
                    existing[(row[1], row[2], row[3])] = (int(row[0]), row[4], str(row[5]))
        except psycopg.Error as exc:
            # The COMMIT may or may not have happened: the senders resend after AE/CE, and a
            # resend of a stored message is a duplicate that gets its stored ACK.
            log.warning("HL7 inbox: PostgreSQL error (%s); reconnecting", type(exc).__name__)
            with contextlib.suppress(psycopg.Error):
                await conn.close()
            self._conn = None
            raise DatabaseError("the HL7 inbox could not be written") from exc
        return _results(messages, keys, inserted, existing)


def _params(messages: Sequence[NewMessage]) -> list[Any]:
    params: list[Any] = []
    for m in messages:
        params += (
            m.sending_application,
            m.sending_facility,
            m.control_id,
            m.message_type,
            m.version,
            m.charset,
            m.accept_ack_type,
            m.application_ack_type,
            m.raw,
            len(m.raw),
            m.received_at,
            m.remote_addr,
            m.status,
            0,
            m.received_at if m.status == "received" else None,
            m.last_error,
            m.ack,
        )
    return params


def _results(
    messages: Sequence[NewMessage],
    keys: list[_Key],
    inserted: dict[_Key, int],
    existing: dict[_Key, tuple[int, bytes | None, str]],
) -> list[StoreResult]:
    """Same rules as :meth:`InboxRepository.store_many`: the first of a key stored, later ones
    (in the batch or in the table) are duplicates answered with the first one's ACK."""
    results: list[StoreResult] = []
    first: dict[_Key, StoreResult] = {}
    for message, key in zip(messages, keys, strict=True):
        if key in first:
            earlier = first[key]
            results.append(StoreResult(earlier.id, True, earlier.ack, earlier.status))
        elif key in inserted:
            result = StoreResult(inserted[key], False, message.ack, message.status)
            first[key] = result
            results.append(result)
        elif key in existing:
            row_id, ack, status = existing[key]
            results.append(StoreResult(row_id, True, ack, status))
        else:
            raise DatabaseError("the HL7 inbox refused a message")
    return results


def store_for(engine: Engine, repository: InboxRepository) -> InboxStore:
    """The fast path on PostgreSQL, the threaded sync path elsewhere (both enqueue the
    ``hl7.process`` jobs when the repository does)."""
    if engine.dialect.name == "postgresql":
        return PostgresGroupCommitStore.for_engine(
            engine, job_max_attempts=repository.job_max_attempts
        )
    return ThreadedStore(repository)
