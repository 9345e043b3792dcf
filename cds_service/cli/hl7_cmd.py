"""``oncocds mllp`` (the listener) and ``oncocds hl7 list|show|replay|worker``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from cds_service.cli.common import fail as _fail
from cds_service.cli.common import operator_id as _operator
from cds_service.cli.common import out as _out
from cds_service.errors import OncoCDSError

if TYPE_CHECKING:
    from cds_service.settings import Settings


def register(sub: Any) -> None:
    mllp = sub.add_parser(
        "mllp", help="start the HL7 v2 MLLP listener (ONCOCDS_MLLP_HOST / ONCOCDS_MLLP_PORT)"
    )
    mllp.set_defaults(func=_mllp)
    parser = sub.add_parser("hl7", help="HL7 v2 inbox: list, show, replay, worker")
    hl7_sub = parser.add_subparsers(dest="hl7_command", required=True)
    listing = hl7_sub.add_parser("list", help="list inbox messages, newest first")
    listing.add_argument(
        "--status",
        choices=["received", "processing", "processed", "failed", "not-processed"],
        default=None,
    )
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_list)
    show = hl7_sub.add_parser("show", help="show one message's metadata")
    show.add_argument("id", type=int)
    show.add_argument(
        "--payload",
        action="store_true",
        help="also print the raw message, ACKs and result (PHI; the read is audited)",
    )
    show.set_defaults(func=_show)
    replay = hl7_sub.add_parser("replay", help="process a failed or not-processed message again")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?")
    target.add_argument("--all-failed", action="store_true")
    replay.add_argument("--force", action="store_true", help="also replay a processed message")
    replay.set_defaults(func=_replay)
    worker = hl7_sub.add_parser(
        "worker",
        help="run the hl7.process jobs in the foreground (in-process executor, no broker)",
    )
    worker.set_defaults(func=_worker)


def _setup() -> tuple[Settings, Any]:
    from cds_service.db.engine import make_engine
    from cds_service.settings import Settings

    settings = Settings()
    return settings, make_engine(settings.database_url, pool_size=2)


def _mllp(args: argparse.Namespace) -> int:
    import asyncio

    from cds_service.hl7.listener import run_listener
    from cds_service.logs import configure_logging
    from cds_service.settings import Settings

    settings = Settings()
    try:
        settings.check_secure()
    except OncoCDSError as exc:
        return _fail(exc)
    configure_logging(settings.log_level, settings.log_format)
    from cds_service.db.engine import make_engine

    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size, pre_ping=False)
    try:
        asyncio.run(run_listener(settings, engine))
    except OSError as exc:
        sys.stderr.write(f"oncocds: error: cannot listen: {exc.strerror or exc}\n")
        return 2
    finally:
        engine.dispose()
    return 0


def _list(args: argparse.Namespace) -> int:
    from cds_service.audit import AuditTrail
    from cds_service.hl7.repository import InboxRepository
    from cds_service.hl7.service import message_metadata

    settings, engine = _setup()
    try:
        rows = InboxRepository(engine).list_messages(status=args.status, limit=args.limit)
        # Who looked at the queue, as for the API listing: identifiers and counts only.
        AuditTrail(engine, source_observer=settings.instance_id).record(
            action="R",
            event_type="hl7.message.list",
            agent_who=_operator(),
            agent_type="user",
            details={"status": args.status, "count": len(rows)},
        )
    except OncoCDSError as exc:
        return _fail(exc)
    finally:
        engine.dispose()
    for row in rows:
        meta = message_metadata(row)
        if args.json:
            _out(json.dumps(meta))
            continue
        _out(
            f"{meta['id']:>8}  {meta['status']:<13} {meta['messageType']:<16} "
            f"{meta['sendingApplication']}|{meta['sendingFacility']}  {meta['controlId']}  "
            f"{meta['receivedAt']}  attempts={meta['attempts']}"
            + (f"  error={meta['lastError']}" if meta["lastError"] else "")
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from cds_service.audit import AuditTrail
    from cds_service.hl7.repository import InboxRepository
    from cds_service.hl7.service import audit_payload_read, message_metadata, message_payload

    settings, engine = _setup()
    try:
        row = InboxRepository(engine).get(args.id)
        body: dict[str, Any] = message_metadata(row)
        if args.payload:
            trail = AuditTrail(engine, source_observer=settings.instance_id)
            audit_payload_read(trail, row, agent_who=_operator(), agent_type="user")
            body["payload"] = message_payload(row)
    except OncoCDSError as exc:
        return _fail(exc)
    finally:
        engine.dispose()
    _out(json.dumps(body, indent=2, ensure_ascii=False))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from cds_service.audit import AuditTrail
    from cds_service.hl7.repository import InboxRepository
    from cds_service.hl7.service import replay

    settings, engine = _setup()
    try:
        repository = InboxRepository(engine)
        trail = AuditTrail(engine, source_observer=settings.instance_id)
        ids = repository.failed_ids() if args.all_failed else [args.id]
        for message_id in ids:
            replay(
                repository,
                trail,
                message_id,
                agent_who=_operator(),
                agent_type="user",
                force=args.force,
            )
            _out(f"{message_id} queued for processing")
    except OncoCDSError as exc:
        return _fail(exc)
    finally:
        engine.dispose()
    if args.all_failed and not ids:
        _out("no failed messages")
    return 0


def _worker(args: argparse.Namespace) -> int:
    """The in-process job executor on the ``hl7`` queue, for a listener run with
    ``ONCOCDS_HL7__WORKER_IN_PROCESS=false`` (the job interface; there is no other loop)."""
    from cds_service.hl7.listener import build_components, hl7_in_process
    from cds_service.logs import configure_logging

    settings, engine = _setup()
    if settings.jobs.broker_url:
        sys.stderr.write(
            "oncocds: error: with ONCOCDS_JOBS__BROKER_URL set, Celery workers run HL7 jobs: "
            "oncocds worker --queues hl7\n"
        )
        engine.dispose()
        return 2
    configure_logging(settings.log_level, settings.log_format)
    _, _, worker = build_components(settings, engine)
    executor = hl7_in_process(settings, engine, worker)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    executor.start()
    try:
        stop.wait()
    finally:
        executor.stop()
        engine.dispose()
    return 0
