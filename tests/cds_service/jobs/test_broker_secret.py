"""``ONCOCDS_JOBS__BROKER_URL`` carries the broker password (``amqp://user:pass@…``): it is a
secret, and neither ``repr``/dumps of the settings, nor the logs, nor the relay and worker
commands' output show the password (CWE-532)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.orm import Session

from cds_service.db.engine import make_engine
from cds_service.jobs import enqueue, load_kinds
from cds_service.logs import JsonFormatter, RedactingFilter
from cds_service.settings import Settings
from tests.cds_service.jobs.scale.support import require_broker

ONCOCDS = str(Path(sys.executable).parent / "oncocds")
PASSWORD = "Pw-7f3c9e-not-for-logs"
URL = f"amqp://oncocds:{PASSWORD}@broker.example:5672/oncocds?ssl_keyfile=/etc/k.pem"


def test_the_settings_hold_the_url_as_a_secret() -> None:
    settings = Settings(jobs={"broker_url": URL})
    assert settings.jobs.broker_url_value() == URL  # what Celery connects with
    shown = [
        repr(settings),
        str(settings),
        repr(settings.jobs),
        settings.model_dump_json(),
        json.dumps(settings.jobs.model_dump(mode="json")),
    ]
    for text in shown:
        assert PASSWORD not in text
    assert (
        settings.jobs.broker_url_redacted() == "amqp://oncocds:***@broker.example:5672/oncocds?***"
    )


def test_without_a_password_nothing_is_invented() -> None:
    settings = Settings(jobs={"broker_url": "amqp://broker.example:5672//"})
    assert settings.jobs.broker_url_redacted() == "amqp://broker.example:5672//"
    assert Settings().jobs.broker_url_redacted() is None


def test_a_url_that_reaches_a_log_record_loses_its_password() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.broker_secret")
    logger.addHandler(handler)
    try:
        logger.warning("cannot reach %s", URL, extra={"broker": URL})
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert PASSWORD not in line
    assert "amqp://oncocds:[redacted]@broker.example:5672" in line


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ONCOCDS, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_relay_and_worker_refused_by_the_broker_do_not_print_the_password(
    sqlite_url: str,
) -> None:
    """The machine's RabbitMQ refuses a wrong password; both commands say where they failed,
    with the password masked."""
    host = require_broker().split("@", 1)[-1]
    url = f"amqp://guest:{PASSWORD}@{host}"
    env = {**os.environ, "ONCOCDS_DATABASE_URL": sqlite_url, "ONCOCDS_JOBS__BROKER_URL": url}
    masked = f"amqp://guest:***@{host}"
    load_kinds()
    engine = make_engine(sqlite_url)
    with Session(engine) as session, session.begin():  # something for the relay to publish
        enqueue(session, kind="jobs.prune", key="broker-secret-test", payload={})
    engine.dispose()
    relay = _run(env, "relay", "--once")
    assert relay.returncode == 2
    assert masked in relay.stderr
    worker = _run(env, "worker", "--queues", "maintenance", "--concurrency", "1")
    assert worker.returncode == 2
    assert masked in worker.stderr
    for output in (relay.stdout, relay.stderr, worker.stdout, worker.stderr):
        assert PASSWORD not in output
