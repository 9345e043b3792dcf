"""Write-back as background jobs (issue 17): one round per write-back job, and the sweep.

``writeback.round`` runs a round for the write-back job named in its payload and brings it to
``done`` when it can: a job already done is left alone (a redelivered or replayed round posts
nothing twice); a failed one is retried (a replay of the dead round job); one held by another
runner is retried later. A round that ends ``failed`` makes the job dead with the write-back's
PHI-free reason (status codes), so it is listed and replayable with the other jobs.
``writeback.sweep`` is the periodic run of due pending jobs that the API's sweeper loop did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cds_service.analyses import repository
from cds_service.errors import ConflictError, NotFoundError
from cds_service.jobs import JobContext, PermanentJobError, RetryableJobError, job_kind
from cds_service.jobs.registry import worker_resource
from cds_service.writeback.service import ROUND_KIND, WritebackRunner, build_client

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cds_service.settings import Settings

RUNNER = "writeback.runner"


class _ProcessRunner:
    """A worker process's runner on its own engine (it caches the EHR access token)."""

    def __init__(self, settings: Settings) -> None:
        from cds_service.audit import AuditTrail
        from cds_service.db.engine import make_engine
        from cds_service.db.session import make_sessionmaker

        self.engine: Engine = make_engine(settings.database_url, pool_size=2)
        self.runner = WritebackRunner(
            settings.writeback,
            make_sessionmaker(self.engine),
            AuditTrail(self.engine, source_observer=settings.instance_id),
            build_client(settings.writeback),
        )

    def close(self) -> None:
        self.runner.close()
        self.engine.dispose()


@worker_resource(RUNNER)
def _runner(settings: Settings) -> _ProcessRunner:
    return _ProcessRunner(settings)


def _round_time_limit() -> float:
    # A round: up to max_attempts (<= 20) token requests and transactions of up to 300 s
    # each, with backoffs of up to 3600 s: the defaults (4 x (2 x 15 s + 60 s)) take 6 min.
    return 1800.0


@job_kind(
    ROUND_KIND,
    queue="writeback",
    max_attempts=5,
    time_limit_s=_round_time_limit(),
    backoff_base_s=30.0,
    backoff_cap_s=900.0,
)
def writeback_round(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    job_id = str(payload.get("writebackJobId", ""))
    with ctx.session_factory() as session:
        current = repository.get_writeback_job(session, job_id)
        status = current.status if current is not None else None
    if status is None:
        raise PermanentJobError("no such write-back job")
    if status == "done":
        return {"writebackJobId": job_id, "status": "done", "ran": False}
    runner = ctx.resource(RUNNER).runner
    # This round job's claim names the write-back's; a later attempt of it (the worker of the
    # earlier one was SIGKILLed: the job system fenced that attempt off) takes the write-back
    # over at once instead of waiting for its lease.
    owner, take_over = f"round:{ctx.job_id}:{ctx.attempt}", f"round:{ctx.job_id}:"
    try:
        if status == "failed":
            job = runner.retry(job_id, owner=owner)
        else:
            job = runner.run(job_id, owner=owner, take_over=take_over)
    except NotFoundError as exc:
        raise PermanentJobError("no such write-back job") from exc
    except ConflictError as exc:
        raise RetryableJobError("write-back job held by another runner") from exc
    if job.status == "failed":
        raise PermanentJobError(f"write-back failed: {job.last_error or 'unknown reason'}")
    return {"writebackJobId": job_id, "status": job.status, "attempts": job.attempts, "ran": True}


def _sweep_every(settings: Settings) -> float:
    return settings.writeback.sweep_interval_seconds if settings.writeback.enabled else 0.0


@job_kind(
    "writeback.sweep", queue="writeback", max_attempts=1, time_limit_s=1800.0, every=_sweep_every
)
def writeback_sweep(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Run every due pending write-back job that no live round job will run (one round each)."""
    done = ctx.resource(RUNNER).runner.run_due(orphans_only=True)
    return {"rounds": len(done), "done": sum(1 for job in done if job.status == "done")}
