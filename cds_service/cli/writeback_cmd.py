"""``oncocds writeback list|retry|run-due``: see, retry and run EHR write-back jobs.

Handlers import the database and write-back modules themselves (declaring the commands loads
none of them).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cds_service.cli.common import operator_id as _operator

if TYPE_CHECKING:
    from cds_service.models.analysis import WritebackJob
    from cds_service.writeback.service import WritebackRunner


def register(sub: Any) -> None:
    parser = sub.add_parser("writeback", help="EHR write-back jobs")
    wb_sub = parser.add_subparsers(dest="writeback_command", required=True)
    listing = wb_sub.add_parser("list", help="list jobs (newest first)")
    listing.add_argument("--status", choices=("pending", "done", "failed"), default=None)
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=_list)
    retry = wb_sub.add_parser("retry", help="retry failed jobs")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("job_id", nargs="?", help="the job to retry")
    which.add_argument("--all-failed", action="store_true", help="retry every failed job")
    retry.set_defaults(func=_retry)
    due = wb_sub.add_parser(
        "run-due",
        help="run pending jobs that are due (what the API's sweeper does; for cron when the "
        "sweeper is off)",
    )
    due.set_defaults(func=_run_due)


def _line(job: WritebackJob) -> str:
    error = f"  last error: {job.last_error}" if job.last_error else ""
    return f"{job.id}  {job.status:<7}  attempts {job.attempts}  analysis {job.analysis_id}{error}"


def _list(args: argparse.Namespace) -> int:
    from cds_service.analyses import repository
    from cds_service.audit import AuditTrail
    from cds_service.db.engine import make_engine
    from cds_service.db.session import make_sessionmaker
    from cds_service.settings import Settings

    settings = Settings()
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session:
            jobs = repository.list_writeback_jobs(
                session, status=args.status, limit=max(1, min(args.limit, 500))
            )
        # As for ``GET /api/v1/writeback``: who looked at the queue, identifiers and counts only.
        AuditTrail(engine, source_observer=settings.instance_id).record(
            action="R",
            event_type="writeback.list",
            agent_who=_operator(),
            agent_type="user",
            details={"status": args.status, "count": len(jobs)},
        )
        for job in jobs:
            print(_line(job))
        print(f"{len(jobs)} job(s)")
    finally:
        engine.dispose()
    return 0


def _with_runner(work: Callable[[WritebackRunner], list[WritebackJob]]) -> list[WritebackJob]:
    from cds_service.audit import AuditTrail
    from cds_service.db.engine import make_engine
    from cds_service.db.session import make_sessionmaker
    from cds_service.settings import Settings
    from cds_service.writeback.service import WritebackRunner, build_client

    settings = Settings()
    client = build_client(settings.writeback)  # refuse before touching the database
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with client:
            runner = WritebackRunner(
                settings.writeback,
                make_sessionmaker(engine),
                AuditTrail(engine, source_observer=settings.instance_id),
                client,
            )
            return work(runner)
    finally:
        engine.dispose()


def _summary(jobs: list[WritebackJob], verb: str) -> int:
    for job in jobs:
        print(_line(job))
    failed = sum(1 for j in jobs if j.status != "done")
    print(f"{len(jobs)} job(s) {verb}, {len(jobs) - failed} done, {failed} not done")
    return 1 if failed else 0


def _retry(args: argparse.Namespace) -> int:
    jobs = _with_runner(
        lambda runner: runner.retry_all_failed() if args.all_failed else [runner.retry(args.job_id)]
    )
    return _summary(jobs, "retried")


def _run_due(args: argparse.Namespace) -> int:
    return _summary(_with_runner(lambda runner: runner.run_due()), "run")
