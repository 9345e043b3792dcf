"""The embedded executor: a pool of worker threads in the API process (what ``make run`` uses).

Each thread claims one due job at a time (``claim_due``) and runs it; idle threads wait on a
condition that :meth:`notify` signals after a commit that enqueued, and otherwise look again
every ``poll_seconds``. One more thread ticks the periodic schedule. Several processes may run
this executor on one database: claims exclude each other (see :mod:`cds_service.jobs.service`).
Handlers block (DB, HTTP, torch), so threads, not the event loop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING

from cds_service.jobs.registry import ResourcePool, load_kinds
from cds_service.jobs.service import claim_due, execute, tick_schedules

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.orm import Session, sessionmaker

    from cds_service.settings import Settings

log = logging.getLogger(__name__)


class InProcessExecutor:
    """Runs jobs on ``settings.jobs.threads`` worker threads."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        queues: Iterable[str] | None = None,
        worker_id: str | None = None,
        schedule: bool = True,
    ) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._queues = tuple(queues) if queues is not None else (settings.jobs.queues or None)
        base = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._worker_base = base
        self._schedule = schedule
        self.resources = ResourcePool(settings)
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._stopping = threading.Event()
        #: Set once the warm resources of the queues served are built (or failed to build).
        self.warmed = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stopping.is_set()

    def start(self) -> None:
        if self._threads:
            return
        load_kinds(self._settings.jobs.extra_modules)
        self._stopping.clear()
        self.warmed.clear()
        # Warm resources (a model bundle) load in the background: the API starts at once and
        # jobs of other queues run meanwhile; a job needing one waits for its build (one build).
        self._threads.append(
            threading.Thread(target=self._warm, name="oncocds-job-warm", daemon=True)
        )
        for n in range(self._settings.jobs.threads):
            thread = threading.Thread(
                target=self._work, args=(f"{self._worker_base}/{n}",), name=f"oncocds-job-{n}"
            )
            thread.daemon = True  # a stuck handler must not keep the process alive at exit
            self._threads.append(thread)
        if self._schedule:
            self._threads.append(
                threading.Thread(target=self._tick, name="oncocds-job-schedule", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the threads; wait up to ``timeout`` (default ``stop_timeout_seconds``) for jobs
        under way. One still running is left to finish (its claim's lease covers it)."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = self._settings.jobs.stop_timeout_seconds if timeout is None else timeout
        for thread in self._threads:
            thread.join(deadline)
            if thread.is_alive():
                log.warning("job thread still busy at stop; left to finish")
        self._threads = []
        self.resources.close()

    def notify(self) -> None:
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def _wait(self) -> None:
        with self._wake:
            if self._pending_wakeups == 0 and not self._stopping.is_set():
                self._wake.wait(self._settings.jobs.poll_seconds)
            self._pending_wakeups = max(0, self._pending_wakeups - 1)

    def _warm(self) -> None:
        try:
            self.resources.warm(self._queues)
        finally:
            self.warmed.set()

    def _work(self, worker_id: str) -> None:
        jobs = self._settings.jobs
        while not self._stopping.is_set():
            try:
                claimed = claim_due(
                    self._session_factory,
                    worker_id=worker_id,
                    queues=self._queues,
                    limit=1,
                    lease_grace_s=jobs.lease_grace_seconds,
                )
            except Exception as exc:  # noqa: BLE001 - the database is away: wait, look again
                log.warning("job claim failed", extra={"error_type": type(exc).__name__})
                self._stopping.wait(jobs.poll_seconds)
                continue
            if not claimed:
                self._wait()
                continue
            for job in claimed:
                try:
                    execute(
                        job,
                        settings=self._settings,
                        session_factory=self._session_factory,
                        resources=self.resources,
                    )
                except Exception as exc:  # noqa: BLE001 - not recorded: the lease lapses, it is retried
                    log.warning(
                        "job outcome not recorded",
                        extra={"job_id": job.id, "error_type": type(exc).__name__},
                    )

    def _tick(self) -> None:
        interval = self._settings.jobs.schedule_poll_seconds
        while not self._stopping.is_set():
            try:
                if tick_schedules(self._session_factory, self._settings):
                    self.notify()
            except Exception as exc:  # noqa: BLE001 - the tick must outlive one failure
                log.warning("job schedule tick failed", extra={"error_type": type(exc).__name__})
            self._stopping.wait(interval)
