"""One job interface for every kind of background work (issue 17); see ``service.py``.

::

    from cds_service.jobs import JobContext, PermanentJobError, enqueue, job_kind

    @job_kind("imaging.analyse", queue="imaging", max_attempts=5, time_limit_s=900)
    def analyse(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any] | None: ...

    job = enqueue(session, kind="imaging.analyse", key="imaging:<uid>:<sha>", payload={...})
"""

from cds_service.jobs.errors import (
    JobError,
    JobPayloadError,
    PermanentJobError,
    RetryableJobError,
    UnknownJobKindError,
)
from cds_service.jobs.registry import (
    JobContext,
    JobKind,
    ResourcePool,
    job_kind,
    load_kinds,
    worker_resource,
)
from cds_service.jobs.service import (
    ClaimedJob,
    RunOutcome,
    claim_due,
    claim_job,
    enqueue,
    enqueue_row,
    execute,
    get_job,
    list_jobs,
    replay,
    run_one,
    tick_schedules,
)

__all__ = [
    "ClaimedJob",
    "JobContext",
    "JobError",
    "JobKind",
    "JobPayloadError",
    "PermanentJobError",
    "ResourcePool",
    "RetryableJobError",
    "RunOutcome",
    "UnknownJobKindError",
    "claim_due",
    "claim_job",
    "enqueue",
    "enqueue_row",
    "execute",
    "get_job",
    "job_kind",
    "list_jobs",
    "load_kinds",
    "replay",
    "run_one",
    "tick_schedules",
    "worker_resource",
]
