"""The transactional outbox relay (``oncocds relay``): job rows → RabbitMQ, with confirms.

A job row commits with the business data that caused it (:func:`cds_service.jobs.enqueue`
only flushes). The relay turns committed rows into broker messages:

1. in one transaction, select the rows that need a message (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so any number of relays share the table without publishing a row twice at once);
2. publish each with **publisher confirms** (the publish returns only when RabbitMQ has the
   message; a nack or a lost connection raises);
3. set ``published_at`` on the rows that were confirmed and commit.

A crash between 2 and 3 leaves ``published_at`` NULL: the row is published again after the
restart, and the consumer (:func:`cds_service.jobs.run_one`) is idempotent, so the job still
runs once. While the broker is down nothing is marked: jobs wait in the outbox and drain when
it returns.

Which rows need a message (:func:`needs_message`):

- ``queued`` or ``failed``, due, and not published since the row last changed (a new job, a
  replay, a failed attempt whose retry is now due), or published more than
  :data:`STALE_AFTER` ago and still waiting;
- ``running`` whose lease ran out (its worker died with the message acknowledged or lost) and
  that was not published since the lease was taken.

The relay also ticks the periodic schedule (the core's conditional-UPDATE claim enqueues each
periodic run once across the cluster), so a deployment with only API processes, workers and
relays runs its periodic work exactly once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from cds_service.db.base import utcnow
from cds_service.models.jobs import BackgroundJob as J

if TYPE_CHECKING:
    from celery import Celery
    from kombu import Connection, Producer
    from sqlalchemy.orm import Session, sessionmaker

    from cds_service.settings import Settings

log = logging.getLogger(__name__)

#: Time limit for a kind the relay does not know (a newer API than this relay): one hour.
DEFAULT_TIME_LIMIT_S = 3600.0
#: A due job still waiting this long after its message was published is published again
#: (the consumer is idempotent, so an extra message costs one no-op claim).
STALE_AFTER = timedelta(hours=1)


class BrokerUnavailableError(Exception):
    """The broker did not confirm a publish (down, connection lost, or a nack)."""


class Publisher(Protocol):
    """Publishes one job message and returns only when the broker confirmed it."""

    def publish(self, job_id: int, queue: str, time_limit_s: float) -> None:
        """Raises:
        BrokerUnavailableError: not confirmed; the job must stay unmarked.
        """
        ...

    def close(self) -> None: ...


def needs_message(now: datetime, stale_after: timedelta = STALE_AFTER) -> ColumnElement[bool]:
    """The rows the relay publishes (see the module docstring)."""
    # Not published since the row last changed, or published so long ago that the message
    # must be gone (a purged queue, or a worker whose clock ran behind found it not yet due).
    needs = or_(
        J.published_at.is_(None),
        J.published_at < J.updated_at,
        J.published_at < now - stale_after,
    )
    return or_(
        and_(J.status.in_(("queued", "failed")), J.next_attempt_at <= now, needs),
        and_(
            J.status == "running",
            J.locked_until < now,
            or_(J.published_at.is_(None), J.published_at < J.locked_until),
        ),
    )


def kind_time_limit(kind: str) -> float:
    """The registered kind's time limit (seconds)."""
    from cds_service.jobs import registry

    spec = registry.get_kind(kind)
    if spec is None:
        return DEFAULT_TIME_LIMIT_S
    return float(spec.time_limit_s)


class CeleryPublisher:
    """Publishes ``oncocds.run_job(job_id)`` on a kombu connection with publisher confirms.

    One connection, reused; any error closes it and the next publish connects again.
    """

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        from cds_service.jobs.celery_app import create_celery_app

        self._settings = settings
        self._app = app or create_celery_app(settings)
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def _ready_producer(self) -> Producer:
        if self._producer is None:
            connection = self._app.connection_for_write()
            # Fail fast: the relay retries on its own schedule, and jobs wait in the outbox.
            connection.ensure_connection(max_retries=1, timeout=5)
            self._connection = connection
            self._producer = self._app.amqp.Producer(connection.default_channel)
        return self._producer

    def publish(self, job_id: int, queue: str, time_limit_s: float) -> None:
        from cds_service.jobs.celery_app import TASK_NAME, queue_name, time_limits

        soft, hard = time_limits(time_limit_s)
        try:
            producer = self._ready_producer()
            self._app.send_task(
                TASK_NAME,
                args=[job_id],
                # A name from task_queues: Celery declares the quorum queue before publishing.
                queue=queue_name(self._settings, queue),
                producer=producer,
                retry=False,
                soft_time_limit=soft,
                time_limit=hard,
            )
        except Exception as exc:  # kombu/amqp raise many types (OSError, AMQPError, nack …)
            self.close()
            raise BrokerUnavailableError(type(exc).__name__) from exc

    def close(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:
                log.debug("broker connection close failed", exc_info=True)


class Relay:
    """Publishes the outbox (see the module docstring).

    Args:
        session_factory: sessions on the jobs database.
        publisher: the broker side.
        batch: rows per transaction.
        tick: called once per round before publishing (the periodic schedule); may be None.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        publisher: Publisher,
        *,
        batch: int = 200,
        tick: Callable[[datetime], Any] | None = None,
    ) -> None:
        self._sessions = session_factory
        self._publisher = publisher
        self._batch = batch
        self._tick = tick
        #: Messages confirmed by the broker (for the bench and tests).
        self.published = 0

    def run_once(self, now: datetime | None = None) -> int:
        """Publish one batch of due rows; return how many were published.

        Raises:
            BrokerUnavailableError: the broker did not confirm (what was confirmed is marked).
            SQLAlchemyError: the database failed (nothing is marked; rows are published again).
        """
        now = now or utcnow()
        if self._tick is not None:
            self._tick(now)
        with self._sessions() as session, session.begin():
            stmt = (
                select(J.id, J.kind, J.queue)
                .where(needs_message(now))
                .order_by(J.id)
                .limit(self._batch)
            )
            bind = session.get_bind()
            if bind.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True, of=J)
            rows = session.execute(stmt).all()
            # Stamped before publishing: a worker that claims (or fails) a job after its
            # message went out always leaves updated_at later than published_at, so a retry it
            # schedules is seen as not yet published, whatever the commit order.
            stamp = utcnow()
            confirmed: list[int] = []
            try:
                for job_id, kind, queue in rows:
                    self._publisher.publish(int(job_id), str(queue), kind_time_limit(str(kind)))
                    confirmed.append(int(job_id))
            finally:
                if confirmed:
                    session.execute(update(J).where(J.id.in_(confirmed)).values(published_at=stamp))
        self.published += len(confirmed)
        return len(confirmed)

    def run(
        self,
        stop: threading.Event,
        wake: threading.Event | None = None,
        *,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        """Publish until ``stop`` is set; sleep ``poll_seconds`` (or until ``wake``) when the
        outbox is empty, back off (doubling up to ``max_backoff_seconds``) while the broker or
        the database is unavailable."""
        backoff = poll_seconds
        while not stop.is_set():
            try:
                published = self.run_once()
            except BrokerUnavailableError as exc:
                log.warning("job relay: broker unavailable (%s); jobs wait in the outbox", exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, max_backoff_seconds)
                continue
            except SQLAlchemyError as exc:
                log.warning("job relay: database unavailable (%s)", type(exc).__name__)
                stop.wait(backoff)
                backoff = min(backoff * 2, max_backoff_seconds)
                continue
            backoff = poll_seconds
            if published >= self._batch:
                continue
            if wake is not None:
                wake.wait(poll_seconds)
                wake.clear()
            else:
                stop.wait(poll_seconds)
        self._publisher.close()


def build_relay(
    settings: Settings, session_factory: sessionmaker[Session], publisher: Publisher
) -> Relay:
    """A relay configured from ``settings`` that also ticks the periodic schedule."""
    from cds_service.jobs import load_kinds

    load_kinds(settings.jobs.extra_modules)
    return Relay(
        session_factory,
        publisher,
        batch=settings.jobs.relay_batch,
        tick=_schedule_ticker(settings, session_factory),
    )


def _schedule_ticker(
    settings: Settings, session_factory: sessionmaker[Session]
) -> Callable[[datetime], Any]:
    from cds_service.jobs import tick_schedules

    def tick(now: datetime) -> None:
        tick_schedules(session_factory, settings, now=now)

    return tick


class CeleryExecutor:
    """The job :class:`~cds_service.jobs.Executor` when ``jobs.broker_url`` is set.

    Jobs run in ``oncocds worker`` processes. With ``jobs.relay_in_process`` (the default) this
    process also runs a relay thread that :meth:`notify` wakes right after a commit, so a job is
    on the broker within milliseconds; without it, ``oncocds relay`` publishes.
    """

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self._settings = settings
        self._sessions = session_factory
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self._settings.jobs.relay_in_process or self._thread is not None:
            return
        relay = build_relay(self._settings, self._sessions, CeleryPublisher(self._settings))
        self._stop.clear()
        self._thread = threading.Thread(
            target=relay.run,
            args=(self._stop, self._wake),
            kwargs={"poll_seconds": self._settings.jobs.relay_poll_seconds},
            name="job-relay",
            daemon=True,
        )
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
