"""``oncocds jobs list|show|replay``: background jobs for operators (audited like the API)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from cds_service.cli.common import fail as _fail
from cds_service.cli.common import operator_id as _operator
from cds_service.cli.common import out as _out
from cds_service.errors import OncoCDSError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cds_service.audit import AuditTrail
    from cds_service.settings import Settings

STATUSES = ("queued", "running", "succeeded", "failed", "dead")


def register(sub: Any) -> None:
    parser = sub.add_parser("jobs", help="background jobs: list, show, replay")
    jobs_sub = parser.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--status", choices=STATUSES, default=None)
    listing.add_argument("--kind", default=None, help="only jobs of this kind")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_list)
    show = jobs_sub.add_parser("show", help="one job with its payload and result (JSON)")
    show.add_argument("id", type=int)
    show.set_defaults(func=_show)
    replay = jobs_sub.add_parser("replay", help="queue a dead or failed job again")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?")
    target.add_argument("--all-dead", action="store_true", help="replay every dead job")
    replay.set_defaults(func=_replay)


def _setup() -> tuple[Settings, Engine, Any, AuditTrail]:
    from cds_service.audit import AuditTrail
    from cds_service.db.engine import make_engine
    from cds_service.db.session import make_sessionmaker
    from cds_service.settings import Settings

    settings = Settings()
    engine = make_engine(settings.database_url, pool_size=2)
    trail = AuditTrail(engine, source_observer=settings.instance_id)
    return settings, engine, make_sessionmaker(engine), trail


def _list(args: argparse.Namespace) -> int:
    from cds_service.jobs import operators

    _, engine, factory, trail = _setup()
    try:
        rows = operators.list_jobs(
            factory,
            trail,
            agent_who=_operator(),
            agent_type="user",
            status=args.status,
            kind=args.kind,
            limit=max(1, min(args.limit, 1000)),
        )
    except OncoCDSError as exc:
        return _fail(exc)
    finally:
        engine.dispose()
    for row in rows:
        meta = operators.job_metadata(row)
        if args.json:
            _out(json.dumps(meta))
            continue
        _out(
            f"{meta['id']:>8}  {meta['status']:<9} {meta['kind']:<24} {meta['key']}  "
            f"attempts={meta['attempts']}/{meta['maxAttempts']}"
            + (f"  error={meta['lastError']}" if meta["lastError"] else "")
        )
    _out(f"{len(rows)} job(s)")
    return 0


def _show(args: argparse.Namespace) -> int:
    from cds_service.jobs import operators

    _, engine, factory, trail = _setup()
    try:
        job = operators.show_job(factory, trail, args.id, agent_who=_operator(), agent_type="user")
    except OncoCDSError as exc:
        return _fail(exc)
    finally:
        engine.dispose()
    _out(json.dumps(operators.job_metadata(job, full=True), indent=2, ensure_ascii=False))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from cds_service.jobs import operators
    from cds_service.jobs import service as jobs_service

    _, engine, factory, trail = _setup()
    try:
        if args.all_dead:
            with factory() as session:
                ids = [job.id for job in jobs_service.list_jobs(session, status="dead", limit=1000)]
        else:
            ids = [args.id]
        for job_id in ids:
            operators.replay_job(factory, trail, job_id, agent_who=_operator(), agent_type="user")
            _out(f"{job_id} queued")
    except OncoCDSError as exc:
        return _fail(exc)
    finally:
        engine.dispose()
    if args.all_dead and not ids:
        _out("no dead jobs")
    return 0
