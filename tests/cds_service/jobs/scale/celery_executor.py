"""The Celery executor as the shared behavioural suite runs it: the production
:class:`~cds_service.jobs.relay.CeleryExecutor` (relay thread, woken by ``notify``) plus a
Celery worker in a thread of the test process consuming this test's own queues on the machine's
RabbitMQ. ``stop()`` takes both down and deletes the queues."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from tests.cds_service.jobs.scale.support import (
    QUEUES,
    delete_queues,
    require_broker,
    unique_prefix,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from cds_service.settings import Settings


def celery_settings(settings: Settings, broker_url: str, prefix: str, **jobs: Any) -> Settings:
    """``settings`` with the broker, this test's queue prefix and fast relay polling."""
    updated = settings.jobs.model_copy(
        update={
            "broker_url": broker_url,
            "queue_prefix": prefix,
            "relay_poll_seconds": 0.05,
            **jobs,
        }
    )
    return settings.model_copy(update={"jobs": updated})


class CeleryTestExecutor:
    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.broker_url = require_broker()
        self.prefix = unique_prefix()
        self.settings = celery_settings(settings, self.broker_url, self.prefix)
        self._sessions = session_factory
        self._stack: contextlib.ExitStack | None = None
        self._relay: Any = None
        self.app: Any = None

    def start(self) -> None:
        if self._stack is not None:
            return
        from celery.contrib.testing.worker import start_worker

        from cds_service.jobs.celery_app import create_celery_app, queue_name
        from cds_service.jobs.relay import CeleryExecutor

        self.app = create_celery_app(self.settings)
        stack = contextlib.ExitStack()
        stack.enter_context(
            start_worker(
                self.app,
                pool="threads",
                concurrency=2,
                perform_ping_check=False,
                shutdown_timeout=30.0,
                queues=[queue_name(self.settings, q) for q in QUEUES],
                loglevel="WARNING",
            )
        )
        self._stack = stack
        self._relay = CeleryExecutor(self.settings, self._sessions)
        self._relay.start()

    def notify(self) -> None:
        if self._relay is not None:
            self._relay.notify()

    def stop(self, timeout: float | None = None) -> None:
        from cds_service.jobs.celery_app import close_runtime

        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        if self._stack is not None:
            self._stack.close()
            self._stack = None
        if self.app is not None:
            close_runtime(self.app)
        with contextlib.suppress(Exception):
            delete_queues(self.broker_url, self.prefix)
