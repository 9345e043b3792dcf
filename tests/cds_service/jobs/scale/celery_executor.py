"""The Celery executor as the shared behavioural suite runs it: the production
:class:`~cds_service.jobs.relay.CeleryExecutor` (relay thread, woken by ``notify``) plus an
``oncocds worker`` process consuming this test's own queues on the machine's RabbitMQ.
``stop()`` takes both down and deletes the queues."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from tests.cds_service.jobs.scale import kinds as celery_kinds
from tests.cds_service.jobs.scale.support import (
    QUEUES,
    consumers,
    delete_queues,
    require_broker,
    unique_prefix,
)

REPO = Path(__file__).resolve().parents[4]

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from cds_service.settings import Settings


def celery_settings(settings: Settings, broker_url: str, prefix: str, **jobs: Any) -> Settings:
    """``settings`` with the broker, this test's queue prefix and fast relay polling."""
    updated = settings.jobs.model_copy(
        update={
            "broker_url": SecretStr(broker_url),
            "queue_prefix": prefix,
            "relay_poll_seconds": 0.05,
            **jobs,
        }
    )
    return settings.model_copy(update={"jobs": updated})


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of an ``oncocds worker``/``relay`` process for ``settings``."""
    broker_url = settings.jobs.broker_url_value()
    assert broker_url is not None
    return {
        **os.environ,
        "ONCOCDS_DATABASE_URL": settings.database_url,
        "ONCOCDS_JOBS__BROKER_URL": broker_url,
        "ONCOCDS_JOBS__QUEUE_PREFIX": settings.jobs.queue_prefix,
        "ONCOCDS_JOBS__EXTRA_MODULES": json.dumps(
            sorted({*settings.jobs.extra_modules, celery_kinds.MODULE})
        ),
        "ONCOCDS_JOBS__RELAY_POLL_SECONDS": str(settings.jobs.relay_poll_seconds),
        "ONCOCDS_JOBS__LEASE_GRACE_SECONDS": str(settings.jobs.lease_grace_seconds),
        "ONCOCDS_LOG_LEVEL": "WARNING",
        **extra,
    }


def oncocds_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``oncocds ARGS`` as a process run from the repository (so ``tests`` modules import)."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from cds_service.cli import main; sys.exit(main(sys.argv[1:]))",
                *args,
            ],
            env=env,
            cwd=REPO,
            stdout=sink,
            stderr=sink,
        )


def wait_for_consumers(
    broker_url: str, prefix: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    """Wait until a worker consumes this test's ``default`` queue (fail if it exits)."""
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text()[-4000:]
        if consumers(broker_url, prefix, "default") > 0:
            return
        assert time.monotonic() < deadline, "the Celery worker did not start consuming"
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # Celery: warm shutdown, running jobs finish
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


class CeleryTestExecutor:
    """Relay thread in the test process (the production CeleryExecutor, woken by notify) and
    one ``oncocds worker`` process on this executor's own queues. A Celery worker is a process
    of its own: two embedded workers cannot share one process (kombu's event hub is global)."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.broker_url = require_broker()
        self.prefix = unique_prefix()
        self.settings = celery_settings(settings, self.broker_url, self.prefix)
        self._sessions = session_factory
        self._relay: Any = None
        self._worker: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="oncocds-celery-"))
        self.worker_log = self._dir / "worker.log"

    def start(self) -> None:
        if self._worker is not None:
            return
        from cds_service.jobs.relay import CeleryExecutor

        self._worker = oncocds_process(
            ["worker", "--queues", ",".join(QUEUES), "--concurrency", "2"],
            worker_env(self.settings),
            self.worker_log,
        )
        wait_for_consumers(self.broker_url, self.prefix, self._worker, self.worker_log)
        self._relay = CeleryExecutor(self.settings, self._sessions)
        self._relay.start()

    def notify(self) -> None:
        if self._relay is not None:
            self._relay.notify()

    def stop(self, timeout: float | None = None) -> None:
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        if self._worker is not None:
            stop_process(self._worker)
            self._worker = None
        with contextlib.suppress(Exception):
            delete_queues(self.broker_url, self.prefix)
        shutil.rmtree(self._dir, ignore_errors=True)
