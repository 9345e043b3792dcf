"""``oncocds mllp``: the HL7 v2 MLLP listener on asyncio streams.

Per connection: bytes go through :class:`FrameDecoder`; each complete frame is answered, in
order, before the next one (any number of messages per persistent connection). A message is
stored in ``hl7_inbox_messages`` and the transaction **committed before the ACK is written**
(:mod:`.store`: group commit on an event-loop connection on PostgreSQL, a thread elsewhere); a
duplicate (same MSH-3, MSH-4, MSH-10) gets the stored ACK
again. Nothing a peer sends can crash the loop: bad frames become AR/AE (CR/CE in enhanced mode)
with an ERR segment, an unfinished frame at close is logged and dropped (it was never ACKed, so
the sender still owns it).

Limits: ``max_frame_bytes`` per message (larger → AR, content discarded as it streams),
``idle_timeout_seconds`` per connection, ``max_connections`` at once (more are closed at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cds_service.audit import AuditTrail, Outcome
from cds_service.db.base import utcnow
from cds_service.errors import DatabaseError
from cds_service.hl7.audit import AuditSink, recover_received_records
from cds_service.hl7.processing import PROCESSED_TYPES, GeneticResultProcessor, ResultProcessor
from cds_service.hl7.repository import InboxRepository, NewMessage, StoreResult
from cds_service.hl7.store import InboxStore, ThreadedStore, store_for
from cds_service.hl7.worker import Worker
from cds_service.settings import Hl7Settings, Settings
from integrations.hl7v2.ack import (
    AckError,
    Responder,
    accept_ack_code,
    build_ack,
    encode_ack,
)
from integrations.hl7v2.ack import (
    Outcome as AckOutcome,
)
from integrations.hl7v2.errors import (
    APPLICATION_INTERNAL_ERROR,
    UNSUPPORTED_MESSAGE_TYPE,
    VALUE_TOO_LONG,
    Hl7CharsetError,
    Hl7Error,
    Hl7HeaderError,
)
from integrations.hl7v2.message import (
    CharsetPolicy,
    MessageHeader,
    decode_message,
    normalise_line_endings,
    read_header,
)
from integrations.hl7v2.mllp import DecodedEvent, FrameDecoder, Garbage, OversizeFrame, frame

if TYPE_CHECKING:
    from cds_service.jobs.executor import Executor
    from cds_service.jobs.inprocess import InProcessExecutor

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024


class _Wake(Protocol):
    def set(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What the listener decided for one frame before storing it."""

    header: MessageHeader | None
    outcome: AckOutcome
    errors: tuple[AckError, ...]
    store_status: str | None  # None: not stored (rejected)
    charset: str | None
    last_error: str | None


@dataclass(slots=True)
class _Pending:
    """A message waiting for the store transaction; ``reply`` is set after it."""

    header: MessageHeader
    verdict: _Verdict
    message: NewMessage
    reply: bytes | None = None


def _lenient_header(text: str) -> MessageHeader | None:
    """A header for mirroring the reject ACK of a message with LF separators."""
    try:
        return read_header(text.replace("\r\n", "\r").replace("\n", "\r"))
    except Hl7HeaderError:
        return None


class MllpListener:
    """The MLLP server: frames → inbox (commit) → ACK.

    Args:
        settings: the HL7 section (limits, charsets, type policy, TLS).
        repository: the inbox.
        audit: the background audit writer.
        wake: set after each stored message so the executor looks for its job at once.
        store: how messages are committed (default: ``repository`` in a thread); the listener
            closes it.
    """

    def __init__(
        self,
        settings: Hl7Settings,
        repository: InboxRepository,
        audit: AuditSink,
        *,
        wake: _Wake | None = None,
        store: InboxStore | None = None,
    ) -> None:
        self._settings = settings
        self._repo = repository
        self._store: InboxStore = store or ThreadedStore(repository)
        self._audit = audit
        self._wake = wake
        self._charsets = CharsetPolicy(settings.default_charset, settings.fallback_charsets)
        self._responder = Responder(settings.responder_application, settings.responder_facility)
        self._active = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def active_connections(self) -> int:
        return self._active

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self._settings.tls_cert_file is None or self._settings.tls_key_file is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._settings.tls_cert_file, self._settings.tls_key_file)
        return context

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and start accepting; return the bound address (port 0 picks a free one)."""
        self._server = await asyncio.start_server(
            self._on_connection, host, port, ssl=self._ssl_context(), limit=READ_CHUNK
        )
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
        await self._store.close()

    # ------------------------------------------------------------------ connections

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        peer = writer.get_extra_info("peername")
        remote = str(peer[0]) if isinstance(peer, tuple) else None
        if self._active >= self._settings.max_connections:
            log.warning(
                "MLLP connection refused: connection limit reached",
                extra={"remote_addr": remote, "limit": self._settings.max_connections},
            )
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            return
        self._active += 1
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve(reader, writer, remote)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            log.info("MLLP connection lost", extra={"remote_addr": remote})
        finally:
            self._active -= 1
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, remote: str | None
    ) -> None:
        decoder = FrameDecoder(self._settings.max_frame_bytes)
        while True:
            try:
                # asyncio.timeout, not wait_for: wait_for wraps every read in a new Task.
                async with asyncio.timeout(self._settings.idle_timeout_seconds):
                    data = await reader.read(READ_CHUNK)
            except TimeoutError:
                log.info("MLLP connection idle; closing", extra={"remote_addr": remote})
                return
            if not data:
                if decoder.in_frame:
                    # The sender never finished the frame; it was not ACKed, so the sender still
                    # owns the message. Nothing is stored.
                    log.warning(
                        "MLLP frame truncated at close; discarded",
                        extra={"remote_addr": remote, "bytes": decoder.pending_bytes},
                    )
                    self._audit.submit(
                        action="C",
                        event_type="hl7.received",
                        event_subtype="truncated",
                        outcome=Outcome.MINOR_FAILURE,
                        agent_who=f"mllp:{remote}",
                        agent_type="system",
                        remote_addr=remote,
                        outcome_desc="frame truncated at connection close; discarded",
                        details={"bytes": decoder.pending_bytes},
                    )
                return
            replies = await self._answer(decoder.feed(data), remote)
            if replies:
                writer.write(b"".join(frame(reply) for reply in replies))
                await writer.drain()

    async def _answer(self, events: list[DecodedEvent], remote: str | None) -> list[bytes]:
        """Answer the frames of one read, in order. Messages that are stored go into the inbox
        in one transaction (a sender that pipelines gets one commit for its burst); every ACK
        is written only after that commit."""
        slots: list[bytes | _Pending | None] = []
        for event in events:
            if isinstance(event, Garbage):
                log.info(
                    "MLLP bytes outside a frame skipped",
                    extra={"remote_addr": remote, "bytes": event.size},
                )
            elif isinstance(event, OversizeFrame):
                slots.append(self._oversize(event, remote))
            else:
                slots.append(self._prepare(event.payload, remote))
        pending = [slot for slot in slots if isinstance(slot, _Pending)]
        if pending:
            stored: list[StoreResult | None]
            try:
                stored = list(await self._store.store_many([p.message for p in pending]))
            except DatabaseError:
                log.exception("HL7 messages not stored: database unavailable")
                stored = [None] * len(pending)
            for item, result in zip(pending, stored, strict=True):
                item.reply = self._finish(item, result, remote)
        replies: list[bytes] = []
        for slot in slots:
            reply = slot.reply if isinstance(slot, _Pending) else slot
            if reply is not None:
                replies.append(reply)
        return replies

    # ------------------------------------------------------------------ messages

    def _oversize(self, event: OversizeFrame, remote: str | None) -> bytes | None:
        header = _lenient_header(event.head.decode("iso8859-1"))
        error = AckError(
            reason=f"message of {event.size} bytes exceeds the maximum of "
            f"{self._settings.max_frame_bytes} bytes",
            code=VALUE_TOO_LONG,
        )
        return self._reject(header, (error,), remote, subtype="oversize")

    def _reject(
        self,
        header: MessageHeader | None,
        errors: tuple[AckError, ...],
        remote: str | None,
        *,
        subtype: str,
    ) -> bytes | None:
        code = accept_ack_code(header, AckOutcome.REJECT)
        self._audit.submit(
            action="C",
            event_type="hl7.received",
            event_subtype=subtype,
            outcome=Outcome.MINOR_FAILURE,
            agent_who=self._agent(header, remote),
            agent_type="system",
            remote_addr=remote,
            control_id=header.control_id[:64] if header else None,
            outcome_desc=errors[0].reason if errors else None,
            details={"messageType": header.message_type if header else None, "stored": False},
        )
        if code is None:
            return None
        self._audit_ack(header, code.value, remote)
        return encode_ack(build_ack(header, code, errors=errors, responder=self._responder), header)

    @staticmethod
    def _agent(header: MessageHeader | None, remote: str | None) -> str:
        if header is None:
            return f"mllp:{remote}"
        return f"hl7:{header.sending_application}|{header.sending_facility}"[:512]

    def _audit_ack(self, header: MessageHeader | None, code: str, remote: str | None) -> None:
        self._audit.submit(
            action="E",
            event_type="hl7.ack-sent",
            event_subtype=code,
            agent_who=self._agent(header, remote),
            agent_type="system",
            remote_addr=remote,
            control_id=header.control_id[:64] if header else None,
            details={"ackCode": code},
        )

    def _judge(self, payload: bytes) -> _Verdict:
        latin = payload.decode("iso8859-1")
        normalise = self._settings.normalise_line_endings
        if normalise:
            latin = normalise_line_endings(latin)
        try:
            header = read_header(latin)
        except Hl7HeaderError as exc:
            return _Verdict(
                _lenient_header(latin),
                AckOutcome.REJECT,
                (AckError.from_error(exc),),
                None,
                None,
                exc.reason,
            )
        if header.type_key not in PROCESSED_TYPES and self._settings.other_types == "refuse":
            error = AckError(
                reason=f"message type {header.type_key} is not accepted by this receiver",
                code=UNSUPPORTED_MESSAGE_TYPE,
                location="MSH^1^9",
            )
            return _Verdict(header, AckOutcome.REJECT, (error,), None, None, error.reason)
        try:
            decoded = decode_message(payload, self._charsets, declared=header.charset)
        except Hl7CharsetError as exc:
            # Stored (nothing lost; replay after fixing the charset settings) but failed.
            return _Verdict(
                header, AckOutcome.ERROR, (AckError.from_error(exc),), "failed", None, exc.reason
            )
        text = normalise_line_endings(decoded.text) if normalise else decoded.text
        if text != latin:  # the usual ASCII message reads the same in every codec
            try:
                header = read_header(text)
            except Hl7Error as exc:  # pragma: no cover - the latin-1 view parsed the same
                return _Verdict(
                    header, AckOutcome.REJECT, (AckError.from_error(exc),), None, None, exc.reason
                )
        if header.type_key in PROCESSED_TYPES:
            return _Verdict(header, AckOutcome.ACCEPT, (), "received", decoded.codec, None)
        return _Verdict(
            header,
            AckOutcome.ACCEPT,
            (),
            "not-processed",
            decoded.codec,
            f"message type {header.type_key} is not processed",
        )

    def _prepare(self, payload: bytes, remote: str | None) -> bytes | _Pending | None:
        """Judge one message: a reject reply now, or the row to store and its ACK."""
        verdict = self._judge(payload)
        header = verdict.header
        if verdict.store_status is None or header is None:
            subtype = "refused" if verdict.header is not None else "rejected"
            return self._reject(header, verdict.errors, remote, subtype=subtype)
        code = accept_ack_code(header, verdict.outcome)
        ack = (
            encode_ack(
                build_ack(header, code, errors=verdict.errors, responder=self._responder), header
            )
            if code is not None
            else None
        )
        message = NewMessage(
            sending_application=header.sending_application,
            sending_facility=header.sending_facility,
            control_id=header.control_id,
            message_type=header.message_type,
            version=header.version[:16],
            charset=verdict.charset,
            accept_ack_type=header.accept_ack_type[:2],
            application_ack_type=header.application_ack_type[:2],
            raw=payload,
            received_at=utcnow(),
            remote_addr=remote,
            status=verdict.store_status,
            last_error=verdict.last_error,
            ack=ack,
        )
        return _Pending(header=header, verdict=verdict, message=message)

    def _finish(
        self, pending: _Pending, stored: StoreResult | None, remote: str | None
    ) -> bytes | None:
        """The reply for a message after the store transaction ended."""
        header, verdict = pending.header, pending.verdict
        if stored is None:
            # Not stored, so never a positive ACK: AE/CE tells the sender to send it again.
            error = AckError(
                reason="the message could not be stored; send it again later",
                code=APPLICATION_INTERNAL_ERROR,
            )
            fail_code = accept_ack_code(header, AckOutcome.ERROR)
            if fail_code is None:
                return None
            return encode_ack(
                build_ack(header, fail_code, errors=(error,), responder=self._responder), header
            )
        self._audit.submit(
            # A new row is the write-ahead log of this record (see cds_service/hl7/audit.py).
            wal_inbox_id=None if stored.duplicate else stored.id,
            action="C",
            event_type="hl7.received",
            event_subtype="duplicate" if stored.duplicate else stored.status,
            outcome=Outcome.SUCCESS
            if verdict.outcome is AckOutcome.ACCEPT
            else Outcome.MINOR_FAILURE,
            outcome_desc=verdict.last_error if verdict.outcome is not AckOutcome.ACCEPT else None,
            agent_who=self._agent(header, remote),
            agent_type="system",
            remote_addr=remote,
            control_id=header.control_id,
            entities=[{"type": "Hl7InboxMessage", "id": str(stored.id)}],
            details={
                "messageType": header.message_type,
                "inboxId": stored.id,
                "duplicate": stored.duplicate,
                "bytes": len(pending.message.raw),
            },
        )
        if not stored.duplicate and stored.status == "received" and self._wake is not None:
            self._wake.set()
        if stored.ack is None:
            return None
        self._audit_ack(header, _ack_code_of(stored.ack), remote)
        return stored.ack


def _ack_code_of(ack: bytes) -> str:
    marker = ack.find(b"\rMSA")
    return ack[marker + 5 : marker + 7].decode("ascii", "replace") if marker >= 0 else "?"


# ---------------------------------------------------------------------- process entry point


def build_components(
    settings: Settings, engine: Engine, *, processor: ResultProcessor | None = None
) -> tuple[InboxRepository, AuditTrail, Worker]:
    repository = InboxRepository(engine)
    trail = AuditTrail(engine, source_observer=settings.instance_id)
    worker = Worker(
        repository,
        processor or GeneticResultProcessor(settings.writeback),
        settings.hl7,
        audit=trail,
    )
    return repository, trail, worker


def hl7_executor(settings: Settings, engine: Engine, worker: Worker) -> Executor | None:
    """What runs the ``hl7.process`` jobs this process commits with each message (issue 17).

    With a broker: the Celery executor (a relay thread here when ``jobs.relay_in_process``;
    Celery workers run the jobs). Without one: the in-process executor on the ``hl7`` queue,
    running the jobs on ``worker`` (this process's engine), when ``hl7.worker_in_process``;
    else None (``oncocds hl7 worker`` or an API process runs them).
    """
    if settings.jobs.broker_url:
        from sqlalchemy.orm import sessionmaker

        from cds_service.jobs.executor import build_executor

        return build_executor(settings, sessionmaker(engine))
    if not settings.hl7.worker_in_process:
        return None
    return hl7_in_process(settings, engine, worker)


def hl7_in_process(settings: Settings, engine: Engine, worker: Worker) -> InProcessExecutor:
    """The in-process executor on the ``hl7`` queue, running the HL7 kinds on ``worker``."""
    from sqlalchemy.orm import sessionmaker

    from cds_service.hl7.jobs import provide_worker
    from cds_service.jobs.inprocess import InProcessExecutor

    executor = InProcessExecutor(settings, sessionmaker(engine), queues=("hl7",))
    provide_worker(executor.resources, worker)
    return executor


async def run_listener(settings: Settings, engine: Engine) -> None:
    """Serve MLLP until SIGTERM/SIGINT, with the executor of :func:`hl7_executor`."""
    # Each message hands the GIL between the event loop and a database thread; with the audit
    # writer and the job threads also running, CPython's default 5 ms switch interval made the
    # loop wait for the GIL on every message (bench/bench_mllp.py: p50 3 ms → 1.4 ms at 0.5 ms).
    sys.setswitchinterval(0.0005)
    repository, trail, worker = build_components(settings, engine)
    # Before accepting: the hl7.received records a killed predecessor never wrote.
    try:
        recovered = await asyncio.to_thread(recover_received_records, trail)
    except (DatabaseError, SQLAlchemyError):
        log.exception("HL7 audit recovery failed; it runs again at the next start")
    else:
        if recovered:
            log.warning("HL7 audit records recovered", extra={"count": recovered})
    sink = AuditSink(trail)
    executor = hl7_executor(settings, engine, worker)
    wake: _Wake | None = None
    if executor is not None:
        # Jobs committed before a crash are picked up now: queued ones at once, a dead
        # process's running ones when their lease runs out.
        executor.start()
        wake = _ExecutorWake(executor)
    listener = MllpListener(
        settings.hl7, repository, sink, wake=wake, store=store_for(engine, repository)
    )
    host, port = await listener.start(settings.mllp_host, settings.mllp_port)
    log.info(
        "MLLP listener started",
        extra={"host": host, "port": port, "tls": settings.hl7.tls_cert_file is not None},
    )
    finished = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, finished.set)
    try:
        await finished.wait()
    finally:
        log.info("MLLP listener stopping")
        await listener.close()
        if executor is not None:
            executor.stop()
        sink.close()


class _ExecutorWake:
    """The listener's ``wake``: a stored message wakes the executor (the in-process job
    threads, or the relay that publishes the job)."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def set(self) -> None:
        self._executor.notify()
