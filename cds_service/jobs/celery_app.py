"""The Celery application for jobs on RabbitMQ (issue 17), built from :class:`Settings`.

PostgreSQL holds the record of every job (``background_jobs``); the broker only carries job ids.
So there is no result backend, and one task, ``oncocds.run_job(job_id)``, runs any job through
the core's :func:`cds_service.jobs.run_one` (claim under a lease, run the handler, record the
outcome fenced by the claim). A redelivered message whose job already succeeded, or that another
worker holds, changes nothing.

Broker settings chosen to survive failures:

- **quorum queues** (``x-queue-type: quorum``): replicated and durable on a RabbitMQ cluster;
  Celery then sets QoS per consumer (global QoS is not supported on them);
- **acks_late** + **reject_on_worker_lost**: a message is acknowledged only after its job ran,
  and a worker killed mid-job returns the message to the queue instead of acknowledging it;
- **prefetch 1** for the heavy queues (imaging, llm): a GPU worker never holds a second job it
  cannot start; light queues prefetch ``jobs.prefetch_multiplier``;
- one **queue per kind family**: ``hl7``, ``writeback``, ``imaging``, ``llm``, ``maintenance``
  (a job kind names its queue), so GPU workers consume only ``imaging,llm``;
- **time limits per kind**: the relay sets each message's soft limit to the kind's
  ``time_limit_s`` and the hard limit a grace period later.

Queue names carry ``jobs.queue_prefix`` (default ``oncocds.``): several sites or test runs can
share one vhost without taking each other's jobs.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from celery import Celery, signals
from kombu import Exchange, Queue

if TYPE_CHECKING:
    from cds_service.settings import Settings

log = logging.getLogger(__name__)

#: The queues of the job system; every job kind names one of them.
QUEUES: Final = ("hl7", "writeback", "imaging", "llm", "maintenance", "default")
#: Long-running jobs (GPU inference, LLM generation): prefetch 1.
HEAVY_QUEUES: Final = frozenset({"imaging", "llm"})
TASK_NAME: Final = "oncocds.run_job"
#: Seconds between a job's soft time limit (SoftTimeLimitExceeded in the handler, so it can
#: clean up) and the hard limit (the pool process is killed).
HARD_LIMIT_GRACE_S: Final = 30


class _Runtime:
    """Per app and worker process: the settings, session factory and resources jobs run with.

    Built in the pool process at its first job (after the fork), never inherited: a database
    connection must not cross a fork.
    """

    def __init__(self, settings: Settings) -> None:
        from sqlalchemy.orm import sessionmaker

        from cds_service.db.engine import make_engine
        from cds_service.jobs import ResourcePool, load_kinds

        load_kinds(settings.jobs.extra_modules)
        self.pid = os.getpid()
        self.settings = settings
        self.engine = make_engine(settings.database_url, pool_size=2)
        self.session_factory: sessionmaker[Any] = sessionmaker(self.engine, expire_on_commit=False)
        self.resources = ResourcePool(settings)
        self.worker_id = f"celery:{socket.gethostname()}:{self.pid}"

    def close(self) -> None:
        self.resources.close()
        self.engine.dispose()


_RUNTIMES: dict[int, _Runtime] = {}


def queue_name(settings: Settings, queue: str) -> str:
    """The broker queue of a job queue (``hl7`` → ``oncocds.hl7``)."""
    return f"{settings.jobs.queue_prefix}{queue}"


def exchange(settings: Settings) -> Exchange:
    # A topic exchange routes an exact routing key like a direct one; Celery binds quorum queues
    # to its native delayed-delivery exchanges at worker start, which only topic exchanges allow
    # (jobs never use ETA/countdown themselves: the relay publishes a retry when it is due).
    return Exchange(f"{settings.jobs.queue_prefix}jobs", type="topic", durable=True)


def broker_queue(settings: Settings, queue: str) -> Queue:
    """A durable quorum queue bound to the jobs exchange under its own name."""
    name = queue_name(settings, queue)
    return Queue(
        name,
        exchange(settings),
        routing_key=name,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def time_limits(time_limit_s: float) -> tuple[int, int]:
    """(soft, hard) Celery time limits in whole seconds for a kind's ``time_limit_s``."""
    soft = max(1, math.ceil(time_limit_s))
    return soft, soft + HARD_LIMIT_GRACE_S


def prefetch_for(queues: Sequence[str], default: int) -> int:
    """Prefetch multiplier for a worker consuming ``queues``: 1 as soon as one is heavy."""
    return 1 if HEAVY_QUEUES.intersection(queues) else default


def create_celery_app(settings: Settings) -> Celery:
    """The Celery app for ``settings`` (broker ``jobs.broker_url``).

    Raises:
        ValueError: no broker URL is configured.
    """
    url = settings.jobs.broker_url_value()
    if not url:
        raise ValueError("ONCOCDS_JOBS__BROKER_URL is not set")
    app = Celery("oncocds", set_as_current=False)
    app.conf.update(
        broker_url=url,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for the broker, it does not exit
        # Publisher confirms: a publish returns only when RabbitMQ has taken the message (for a
        # quorum queue: a majority of replicas has it), so the relay marks it sent only then.
        broker_transport_options={"confirm_publish": True},
        broker_heartbeat=30,
        task_queues=[broker_queue(settings, q) for q in QUEUES],
        task_default_queue=queue_name(settings, "maintenance"),
        task_default_exchange=exchange(settings).name,
        task_default_routing_key=queue_name(settings, "maintenance"),
        task_create_missing_queues=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A task that raises is still acknowledged: the job row records the failure and the
        # core schedules the retry, which the relay publishes when it is due.
        task_acks_on_failure_or_timeout=True,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=settings.jobs.prefetch_multiplier,
        worker_detect_quorum_queues=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        # No remote control traffic (pidbox fanout queues are classic and transient).
        worker_enable_remote_control=False,
        timezone="UTC",
        enable_utc=True,
    )
    app.conf["oncocds_settings"] = settings

    @app.task(  # type: ignore[untyped-decorator,unused-ignore]
        name=TASK_NAME,
        shared=False,  # bound to this app only (one app per Settings; tests build many)
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
    )
    def run_job(job_id: int) -> str:
        """Run one job by id (idempotent; see the module docstring)."""
        return _run(app, int(job_id))

    return app


def declare_queues(app: Celery) -> None:
    """Declare every job queue (also those this worker does not consume): Celery binds all of
    the app's quorum queues to its delayed-delivery exchanges at worker start."""
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=3)
        channel = connection.default_channel
        for queue in app.conf.task_queues:
            queue.bind(channel).declare()


def _worker_runtime(app: Celery) -> _Runtime:
    runtime = _RUNTIMES.get(id(app))
    if runtime is None or runtime.pid != os.getpid():
        runtime = _RUNTIMES[id(app)] = _Runtime(app.conf["oncocds_settings"])
    return runtime


def _run(app: Celery, job_id: int) -> str:
    from cds_service.jobs import run_one

    runtime = _worker_runtime(app)
    outcome = run_one(
        runtime.session_factory,
        job_id,
        worker_id=runtime.worker_id,
        settings=runtime.settings,
        resources=runtime.resources,
        lease_grace_s=runtime.settings.jobs.lease_grace_seconds,
    )
    if outcome is None and _release_dead_local_claim(runtime, job_id):
        # Redelivered because the worker process holding the claim was killed: run it now
        # rather than when its lease (the kind's time limit, up to 30 min) runs out.
        outcome = run_one(
            runtime.session_factory,
            job_id,
            worker_id=runtime.worker_id,
            settings=runtime.settings,
            resources=runtime.resources,
            lease_grace_s=runtime.settings.jobs.lease_grace_seconds,
        )
    # None: not claimable now (done, or held by a live claim): a redelivery changes nothing.
    return "skipped" if outcome is None else outcome.status


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphaned(pid: int) -> bool:
    """Whether ``pid`` is a pool process whose worker is gone: when a worker's main process is
    SIGKILLed its pool processes are re-parented to PID 1 and never report to it again (one
    holding a job may linger, blocked on its dead parent, after the job's message has been
    redelivered). When PID 1 is this process's own worker (a worker started as a container's
    PID 1), a child of PID 1 is a live worker's pool process, not an orphan. Linux ``/proc``;
    elsewhere, or where it cannot be read, no process counts as orphaned (the claim then runs
    to its lease)."""
    if 1 in (os.getpid(), os.getppid()):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # pid (comm) state ppid ...: comm may hold spaces and parentheses; split after the last ")"
    fields = stat.rpartition(")")[2].split()
    return len(fields) > 1 and fields[1] == "1"


def _release_dead_local_claim(runtime: _Runtime, job_id: int) -> bool:
    """End the claim of a job held by a Celery process of *this host* that no longer exists
    (SIGKILLed, OOM-killed) or whose worker is gone (:func:`_orphaned`). The release is
    conditional on the same owner and attempt, so it is fenced like any claim: were that
    process to finish after all, its outcome is refused. A claim held on another host, or by
    a live pool process of a live worker, runs to its lease as usual."""
    from sqlalchemy import select, update

    from cds_service.db.base import utcnow
    from cds_service.models.jobs import BackgroundJob as J

    local = f"celery:{socket.gethostname()}:"
    with runtime.session_factory() as session, session.begin():
        row = session.execute(
            select(J.lease_owner, J.attempts).where(J.id == job_id, J.status == "running")
        ).first()
        if row is None or not row[0] or not str(row[0]).startswith(local):
            return False
        try:
            pid = int(str(row[0])[len(local) :])
        except ValueError:
            return False
        if pid == os.getpid() or (_pid_alive(pid) and not _orphaned(pid)):
            return False
        released = session.execute(
            update(J)
            .where(
                J.id == job_id,
                J.status == "running",
                J.lease_owner == row[0],
                J.attempts == row[1],
            )
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
        done = bool(getattr(released, "rowcount", 0) == 1)
    if done:
        log.warning("job claim of a dead local worker released", extra={"job_id": job_id})
    return done


#: id(app) -> (app, queues its worker consumes): warmed in each pool process as it starts.
_WARM_AT_START: dict[int, tuple[Celery, tuple[str, ...]]] = {}


def warm_at_process_start(app: Celery, queues: Sequence[str]) -> None:
    """Build the warm resources of ``queues`` (e.g. the imaging model) in every pool process
    of this worker as it starts (``worker_process_init``), not at its first job."""
    _WARM_AT_START[id(app)] = (app, tuple(queues))


def warm_runtime(app: Celery, queues: Sequence[str]) -> threading.Thread:
    """Start building this process's warm resources for ``queues`` in a background thread.

    In a thread because Celery kills a pool process that does not report itself up within
    ``worker_proc_alive_timeout`` (4 s), and a model takes longer; a job arriving meanwhile
    waits for the build (one build per resource) rather than starting another."""
    runtime = _worker_runtime(app)
    thread = threading.Thread(
        target=runtime.resources.warm, args=(tuple(queues),), name="oncocds-warm", daemon=True
    )
    thread.start()
    return thread


@signals.worker_process_init.connect  # type: ignore[untyped-decorator,unused-ignore]
def _warm_pool_process(**_: Any) -> None:
    for app, queues in list(_WARM_AT_START.values()):
        try:
            warm_runtime(app, queues)
        except Exception as exc:  # noqa: BLE001 - the database is away: jobs will say so
            log.warning("worker warm-up failed", extra={"error_type": type(exc).__name__})


def close_runtime(app: Celery) -> None:
    """Dispose of this process's database engine and resources for ``app`` (tests, shutdown)."""
    runtime = _RUNTIMES.pop(id(app), None)
    if runtime is not None and runtime.pid == os.getpid():
        runtime.close()


@signals.worker_process_shutdown.connect  # type: ignore[untyped-decorator,unused-ignore]
def _dispose(**_: Any) -> None:
    for key, runtime in list(_RUNTIMES.items()):
        if runtime.pid == os.getpid():
            runtime.close()
            del _RUNTIMES[key]
