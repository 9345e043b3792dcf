"""``oncocds relay``: publish the job outbox to RabbitMQ (issue 17; see cds_service.jobs.relay)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "relay", help="publish committed jobs to the broker (needs ONCOCDS_JOBS__BROKER_URL)"
    )
    parser.add_argument(
        "--once", action="store_true", help="publish what is due once and exit (cron, tests)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from cds_service.settings import Settings

    settings = Settings()
    if not settings.jobs.broker_url:
        sys.stderr.write("oncocds: error: ONCOCDS_JOBS__BROKER_URL is not set\n")
        return 2
    try:
        from cds_service.jobs.relay import BrokerUnavailableError, CeleryPublisher
    except ImportError:
        sys.stderr.write("oncocds: error: Celery is not installed (pip install 'oncocds[scale]')\n")
        return 2
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import sessionmaker

    from cds_service.db.engine import make_engine
    from cds_service.jobs.relay import build_relay
    from cds_service.logs import configure_logging

    settings.check_secure()
    configure_logging(settings.log_level, settings.log_format)
    engine = make_engine(settings.database_url, pool_size=2)
    relay = build_relay(settings, sessionmaker(engine), CeleryPublisher(settings))
    try:
        if args.once:
            try:
                count = relay.run_once()
            except BrokerUnavailableError as exc:
                where = settings.jobs.broker_url_redacted()  # never the password
                sys.stderr.write(f"oncocds: error: the broker is unavailable ({exc}) at {where}\n")
                return 2
            except SQLAlchemyError as exc:
                sys.stderr.write(f"oncocds: error: database unavailable ({type(exc).__name__})\n")
                return 2
            sys.stdout.write(f"published {count} job(s)\n")
            return 0
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        relay.run(
            stop,
            poll_seconds=settings.jobs.relay_poll_seconds,
        )
    finally:
        engine.dispose()
    return 0
