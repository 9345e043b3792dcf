"""``oncocds worker --queues hl7,writeback,…``: a Celery worker for jobs (issue 17).

Needs ``ONCOCDS_JOBS__BROKER_URL`` (and the ``[scale]`` extra). CPU workers take
``hl7,writeback,maintenance``; GPU workers ``imaging,llm`` (prefetch 1 there).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

#: Kept in step with cds_service.jobs.celery_app.QUEUES (not imported: no Celery at parse time).
QUEUE_NAMES = ("hl7", "writeback", "imaging", "llm", "maintenance", "default")


def _queues(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in QUEUE_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"queues are a comma-separated subset of {','.join(QUEUE_NAMES)}"
        )
    return list(dict.fromkeys(names))


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "worker", help="run a Celery job worker (needs ONCOCDS_JOBS__BROKER_URL)"
    )
    parser.add_argument(
        "--queues",
        type=_queues,
        default=["hl7", "writeback", "maintenance", "default"],
        help="comma-separated queues to consume (default: hl7,writeback,maintenance,default)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="pool processes (default: the number of CPUs)",
    )
    parser.add_argument("--hostname", default=None, help="Celery node name (default: auto)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cds_service.settings import Settings

    settings = Settings()
    if not settings.jobs.broker_url:
        sys.stderr.write("oncocds: error: ONCOCDS_JOBS__BROKER_URL is not set\n")
        return 2
    if args.concurrency is not None and not 1 <= args.concurrency <= 256:
        sys.stderr.write("oncocds: error: --concurrency must be between 1 and 256\n")
        return 2
    try:
        from cds_service.jobs.celery_app import (
            create_celery_app,
            declare_queues,
            prefetch_for,
            queue_name,
            warm_at_process_start,
        )
    except ImportError:
        sys.stderr.write("oncocds: error: Celery is not installed (pip install 'oncocds[scale]')\n")
        return 2
    from cds_service.logs import configure_logging

    settings.check_secure()
    configure_logging(settings.log_level, settings.log_format)
    app = create_celery_app(settings)
    try:
        declare_queues(app)
    except Exception as exc:  # noqa: BLE001 - kombu/amqp raise many types (refused, auth, DNS)
        where = settings.jobs.broker_url_redacted()  # never the password
        sys.stderr.write(
            f"oncocds: error: the broker is unavailable ({type(exc).__name__}) at {where}\n"
        )
        return 2
    warm_at_process_start(app, args.queues)
    argv = [
        "worker",
        f"--queues={','.join(queue_name(settings, q) for q in args.queues)}",
        f"--prefetch-multiplier={prefetch_for(args.queues, settings.jobs.prefetch_multiplier)}",
        f"--loglevel={settings.log_level}",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    if args.concurrency is not None:
        argv.append(f"--concurrency={args.concurrency}")
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    app.worker_main(argv)
    return 0
