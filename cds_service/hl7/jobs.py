"""HL7 processing as jobs (issue 17): ``hl7.process`` per stored message, and the periodic
``hl7.application-acks`` sweep. There is no other way a message gets processed.

The listener commits each stored ``received`` message together with its ``hl7.process`` job
(:mod:`.repository` and :mod:`.store`), so a message that was ACKed always has its job: the
job row is the outbox entry that the in-process executor (``oncocds mllp`` runs one for the
``hl7`` queue; so does ``oncocds hl7 worker`` and any API process) or, with a broker, the
Celery relay picks up. After a crash the job is still queued (or its claim's lease runs out)
and the next executor to start runs it.

The job claims its message by id (the inbox claim with its attempt fencing, so one analysis per
message even when two runs overlap), processes it, and finishes:

- ``processed`` / ``not-processed`` / ``failed``: the outcome is on the inbox row; the job
  succeeds with that status as its result (a failed *message* is the operator's business:
  ``oncocds hl7 replay`` queues it again with a new job);
- a transient error (recorded on the row, status back to ``received``) or a message another
  worker still holds: the job raises, and the job system retries it with backoff. The inbox's
  ``ONCOCDS_HL7__MAX_ATTEMPTS`` decides when a message gives up (it is then ``failed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cds_service.db.base import utcnow
from cds_service.hl7.repository import JOB_MAX_ATTEMPTS
from cds_service.jobs import JobContext, RetryableJobError, job_kind, worker_resource

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from cds_service.hl7.worker import Worker
    from cds_service.jobs import ResourcePool
    from cds_service.settings import Settings

PROCESS_KIND = "hl7.process"
ACK_SWEEP_KIND = "hl7.application-acks"
#: The per-process resource that holds the :class:`Worker` the kinds run with.
WORKER_RESOURCE = "hl7.worker"


class Hl7RetryLaterError(RetryableJobError):
    """The message was not finished in this run; the job system retries it (PHI-free)."""


class Hl7Processing:
    """The worker's processing objects, once per process: on an engine of their own (a Celery
    or API worker), or the embedding process's own (the listener; :func:`provide_worker`)."""

    def __init__(self, worker: Worker, owned_engine: Engine | None = None) -> None:
        self.worker = worker
        self._owned_engine = owned_engine

    def close(self) -> None:
        if self._owned_engine is not None:
            self._owned_engine.dispose()


@worker_resource(WORKER_RESOURCE)
def _build(settings: Settings) -> Hl7Processing:
    from cds_service.db.engine import make_engine
    from cds_service.hl7.listener import build_components

    engine = make_engine(settings.database_url, pool_size=2)
    _repository, _trail, worker = build_components(settings, engine)
    return Hl7Processing(worker, engine)


def provide_worker(resources: ResourcePool, worker: Worker) -> None:
    """Make the HL7 kinds run on ``worker`` in this process (the listener's, on its engine)
    instead of building one of their own."""
    resources.provide(WORKER_RESOURCE, Hl7Processing(worker))


def _worker(ctx: JobContext) -> Worker:
    processing: Hl7Processing = ctx.resource(WORKER_RESOURCE)
    return processing.worker


@job_kind(
    PROCESS_KIND,
    queue="hl7",
    max_attempts=JOB_MAX_ATTEMPTS,
    # One message takes milliseconds to a second; the limit bounds how long a killed worker's
    # claim blocks the message on another host.
    time_limit_s=60.0,
    backoff_base_s=2.0,
    backoff_cap_s=300.0,
)
def process_message(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    inbox_id = int(payload["inboxId"])
    worker = _worker(ctx)
    outcome, acks = worker.process_id(inbox_id)
    if outcome == "retry":  # a transient processing error: the HL7 retry policy's wait
        wait = worker.retry_delay(ctx.attempt).total_seconds()
        raise Hl7RetryLaterError(f"HL7 inbox message {inbox_id}: retry", retry_after_s=wait)
    if outcome in ("busy", "lost"):  # another claim, or this one expired: the job's backoff
        raise Hl7RetryLaterError(f"HL7 inbox message {inbox_id}: {outcome}")
    return {"inboxId": inbox_id, "status": outcome, "applicationAcks": acks}


def _ack_interval(settings: Settings) -> float:
    return float(settings.hl7.worker_poll_seconds) * 10


@job_kind(
    ACK_SWEEP_KIND,
    queue="hl7",
    max_attempts=1,
    time_limit_s=120.0,
    every=_ack_interval,
)
def deliver_application_acks(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"attempted": _worker(ctx).deliver_application_acks()}


def process_key(inbox_id: int) -> str:
    return f"hl7:{inbox_id}"


def enqueue_replay(session: Session, inbox_id: int) -> int:
    """A new ``hl7.process`` job for a replayed message (keyed by the replay's time, so each
    replay is one job); returns the job id. The caller commits."""
    from cds_service.jobs import enqueue

    job = enqueue(
        session,
        kind=PROCESS_KIND,
        key=f"{process_key(inbox_id)}:replay:{utcnow().isoformat()}",
        payload={"inboxId": inbox_id},
    )
    return int(job.id)
