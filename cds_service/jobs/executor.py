"""What runs jobs: the :class:`Executor` protocol, and how the app picks and wakes one.

Two executors implement it: :class:`cds_service.jobs.inprocess.InProcessExecutor` (the
embedded default, no broker) and the Celery one (``ONCOCDS_JOBS__BROKER_URL``; the outbox relay
publishes committed jobs, ``oncocds worker`` runs them). Request code never calls an executor:
:func:`cds_service.jobs.enqueue` on a session of the app's sessionmaker wakes it after commit
through the :class:`JobNotifier` stored in the sessionmaker's ``info``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from cds_service.jobs.service import NOTIFY_INFO_KEY

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from cds_service.settings import Settings

log = logging.getLogger(__name__)


class Executor(Protocol):
    def start(self) -> None:
        """Begin taking jobs (idempotent)."""

    def stop(self) -> None:
        """Stop taking jobs; a job under way finishes, or its lease runs out and another
        worker takes it."""

    def notify(self) -> None:
        """A job was committed: look for work now rather than at the next poll. Cheap,
        thread-safe, never blocks."""


class JobNotifier:
    """The callable in ``sessionmaker.kw['info']`` that :func:`enqueue` fires after commit."""

    def __init__(self) -> None:
        self.executor: Executor | None = None

    def __call__(self) -> None:
        executor = self.executor
        if executor is not None:
            try:
                executor.notify()
            except Exception as exc:  # noqa: BLE001 - best effort: polling picks the job up anyway
                log.warning("job executor notify failed", extra={"error_type": type(exc).__name__})


def install_notifier(session_factory: sessionmaker[Session]) -> JobNotifier:
    """Make sessions of ``session_factory`` wake the executor after a commit that enqueued."""
    notifier = JobNotifier()
    info = dict(session_factory.kw.get("info") or {})
    info[NOTIFY_INFO_KEY] = notifier
    session_factory.configure(info=info)
    return notifier


def build_executor(settings: Settings, session_factory: sessionmaker[Session]) -> Executor | None:
    """The executor this process runs: in-process unless a broker is configured (then the
    Celery side's relay and workers run jobs; see ``cds_service/jobs/celery_app.py``) or
    ``ONCOCDS_JOBS__IN_PROCESS`` is false."""
    if settings.jobs.broker_url:
        # Celery: this process only publishes (a relay thread woken at commit, unless
        # jobs.relay_in_process is false); `oncocds worker` processes run the jobs.
        from cds_service.jobs.relay import CeleryExecutor

        return CeleryExecutor(settings, session_factory)
    if not settings.jobs.in_process:
        return None
    from cds_service.jobs.inprocess import InProcessExecutor

    return InProcessExecutor(settings, session_factory)
