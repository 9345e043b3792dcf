"""The job interface: enqueue, claim, run, record, replay, list.

**Enqueue** (:func:`enqueue`) inserts the job row in the caller's session and flushes only: the
row commits with the caller's business data (the transactional outbox of issue 17), so there is
no job without its data and no data without its job. The key makes it idempotent.

**Claim** is one conditional UPDATE per row that sets ``status = 'running'``, a lease
(``lease_owner``, ``locked_until``) and ``attempts + 1``; on PostgreSQL the candidates are read
``FOR UPDATE SKIP LOCKED`` so concurrent claimers take different rows, on SQLite (one writer) the
UPDATE's repeated WHERE lets exactly one claimer win. A running job whose lease ran out (its
worker died) is claimable again. The attempt number is the claim's fencing token: the outcome is
recorded only ``WHERE attempts = <claimed attempt> AND lease_owner = <worker>``, so a worker whose
lease expired cannot overwrite the outcome of the one that claimed the job after it (the same
scheme as ``cds_service/hl7/repository.py``).

**Outcome**: success stores the handler's result; :class:`PermanentJobError` makes the job dead
at once; any other exception is retried after an exponential backoff with jitter until
``max_attempts``, then the job is dead. Dead and failed jobs can be replayed.

**Periodic kinds** (``job_kind(..., every=...)``) have a due-time row each in ``job_schedules``;
:func:`tick_schedules` claims a due time with a conditional UPDATE, so of N processes ticking
the schedule exactly one enqueues each run.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    delete,
    event,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from cds_service.db.base import utcnow
from cds_service.db.engine import json_dumps
from cds_service.errors import ConflictError, NotFoundError
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
    get_kind,
    kinds,
    load_kinds,
)
from cds_service.models.jobs import JOB_STATUSES, LIVE_JOB_STATUSES, BackgroundJob, JobSchedule

if TYPE_CHECKING:
    from sqlalchemy import Table

    from cds_service.settings import Settings

log = logging.getLogger(__name__)

J = BackgroundJob

#: Largest payload accepted (bytes of JSON): identifiers only, never documents or pixels.
MAX_PAYLOAD_BYTES = 16 * 1024
#: Largest result stored (bytes of JSON).
MAX_RESULT_BYTES = 64 * 1024
MAX_KEY_LENGTH = 255
#: ``Session.info`` key of the callable that wakes the executor after a commit (set on the
#: app's sessionmaker; see :class:`cds_service.jobs.executor.JobNotifier`).
NOTIFY_INFO_KEY = "oncocds.jobs.notify"
_ARMED_INFO_KEY = "oncocds.jobs.notify-armed"
_HOOKED_INFO_KEY = "oncocds.jobs.notify-hooked"
#: Extra time beyond a kind's time limit before its claim's lease runs out.
DEFAULT_LEASE_GRACE_S = 30.0


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    #: This claim's attempt number: the fencing token of its outcome.
    attempt: int
    max_attempts: int
    worker_id: str
    locked_until: datetime


@dataclass(frozen=True, slots=True)
class RunOutcome:
    job_id: int
    status: str
    #: False: the claim was lost (lease expired, another worker took the job); nothing recorded.
    recorded: bool
    error: str | None = None


# ---------------------------------------------------------------------------------- enqueue


def _insert_for(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _job_values(
    kind: str, key: str, payload: dict[str, Any], run_at: datetime | None
) -> dict[str, Any]:
    """The new row's columns, after the checks :func:`enqueue` documents."""
    spec = get_kind(kind)
    if spec is None:  # a process that never loaded the kinds (the MLLP listener): load them
        spec = load_kinds().get(kind)
    if spec is None:
        raise UnknownJobKindError(f"unknown job kind {kind!r}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise JobPayloadError(f"a job key is 1-{MAX_KEY_LENGTH} characters")
    if not isinstance(payload, dict):
        raise JobPayloadError("a job payload is a JSON object")
    try:
        size = len(json_dumps(payload).encode())
    except (TypeError, ValueError) as exc:
        raise JobPayloadError("a job payload must be JSON") from exc
    if size > MAX_PAYLOAD_BYTES:
        raise JobPayloadError(f"a job payload is at most {MAX_PAYLOAD_BYTES} bytes (identifiers)")
    now = utcnow()
    return {
        "kind": kind,
        "queue": spec.queue,
        "key": key,
        "payload": payload,
        "status": "queued",
        "attempts": 0,
        "max_attempts": spec.max_attempts,
        "next_attempt_at": run_at or now,
        "created_at": now,
        "updated_at": now,
    }


def enqueue(
    session: Session,
    *,
    kind: str,
    key: str,
    payload: dict[str, Any],
    run_at: datetime | None = None,
) -> BackgroundJob:
    """Add a job in ``session`` (flush only; it commits with the caller's data) and return it.

    Idempotent by ``key``: when a job with that key exists (in any status) it is returned
    unchanged. After the caller commits, the app's executor is woken (when the session comes
    from the app's sessionmaker).

    Raises:
        UnknownJobKindError: ``kind`` is not registered.
        JobPayloadError: ``payload`` is not a JSON object within :data:`MAX_PAYLOAD_BYTES`, or
            the key is empty or too long.
    """
    values = _job_values(kind, key, payload, run_at)
    # One round trip: the ORM-enabled INSERT … RETURNING hands back the new row as an object
    # in the session; nothing comes back when the key exists.
    insert = _insert_for(session)(J).values(values).on_conflict_do_nothing(index_elements=["key"])
    job: BackgroundJob | None = session.scalars(insert.returning(J)).first()
    if job is None:
        return session.scalars(select(J).where(J.key == key)).one()
    _arm_notify(session)
    return job


@functools.cache
def _core_insert(dialect: str) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = cast(Table, J.__table__)
    return insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id)


def enqueue_row(
    session: Session,
    *,
    kind: str,
    key: str,
    payload: dict[str, Any],
    run_at: datetime | None = None,
) -> bool:
    """:func:`enqueue` for a hot path that needs no job object back (a CDS Hooks card storing
    an analysis): the same checks and the same row, in ``session``'s transaction, by one Core
    INSERT … ON CONFLICT DO NOTHING RETURNING id built once per dialect (no ORM object;
    a fraction of the Python work). True when a new job was added, False when the key
    existed. Raises as :func:`enqueue` does."""
    values = _job_values(kind, key, payload, run_at)
    connection = session.connection()
    result = connection.execute(_core_insert(connection.dialect.name), values)
    if result.first() is None:  # the key existed
        return False
    _arm_notify(session)
    return True


def _after_commit(session: Session) -> None:
    if session.info.pop(_ARMED_INFO_KEY, False):
        notify = session.info.get(NOTIFY_INFO_KEY)
        if notify is not None:
            notify()


def _after_rollback(session: Session) -> None:
    session.info.pop(_ARMED_INFO_KEY, None)  # nothing was committed: nothing to run


def _arm_notify(session: Session) -> None:
    """Wake the executor when ``session`` commits (once per commit that enqueued)."""
    if session.info.get(NOTIFY_INFO_KEY) is None:
        return
    if not session.info.get(_HOOKED_INFO_KEY):
        session.info[_HOOKED_INFO_KEY] = True
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
    session.info[_ARMED_INFO_KEY] = True


# ---------------------------------------------------------------------------------- claim


def _lease_for(spec: JobKind | None, grace_s: float) -> timedelta:
    limit = spec.time_limit_s if spec is not None else 300.0
    return timedelta(seconds=limit + grace_s)


_T = cast("Table", BackgroundJob.__table__)
_COLUMNS = _T.c


def _claimable_core() -> ColumnElement[bool]:
    now = bindparam("now", type_=_COLUMNS.next_attempt_at.type)
    return or_(
        and_(_COLUMNS.status.in_(("queued", "failed")), _COLUMNS.next_attempt_at <= now),
        and_(_COLUMNS.status == "running", _COLUMNS.locked_until < now),
    )


@functools.lru_cache(maxsize=64)
def _claim_statement(postgres: bool, kind_names: tuple[str, ...], by_id: bool) -> Any:
    """The claim statement, built once per shape (building SQLAlchemy constructs per call
    cost more than the database round trips): ``UPDATE … WHERE id IN (SELECT … claimable …
    LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING …``.

    On SQLite a single write statement takes the write lock at once (a read upgraded to a
    write fails with SQLITE_BUSY instead of waiting); on PostgreSQL the row locks hand
    concurrent claimers different rows. The outer WHERE repeats the claimable condition. Each
    kind's lease (its time limit plus the grace) comes in as ``lease_<n>``."""
    timestamp = _COLUMNS.locked_until.type
    which = (
        _COLUMNS.id == bindparam("job_id")
        if by_id
        else _COLUMNS.kind.in_(bindparam("kinds", expanding=True))
    )
    candidates = (
        select(_COLUMNS.id)
        .where(which, _claimable_core())
        .order_by(_COLUMNS.next_attempt_at, _COLUMNS.id)
        .limit(bindparam("limit"))
    )
    if postgres:
        # By id (a broker delivered it) the claim waits for a lock instead of skipping the
        # row: the holder is the relay, between publishing the message and committing
        # published_at. Skipping would drop the delivery, and the row, marked published,
        # would wait for the relay's stale-message sweep.
        candidates = candidates.with_for_update(skip_locked=not by_id)
    leases = {name: bindparam(f"lease_{n}", type_=timestamp) for n, name in enumerate(kind_names)}
    locked_until = case(
        leases, value=_COLUMNS.kind, else_=bindparam("lease_default", type_=timestamp)
    )
    return (
        update(_T)
        .where(_COLUMNS.id.in_(candidates.scalar_subquery()), _claimable_core())
        .values(
            status="running",
            attempts=_COLUMNS.attempts + 1,
            lease_owner=bindparam("owner"),
            locked_until=locked_until,
            updated_at=bindparam("now", type_=timestamp),
        )
        .returning(
            _COLUMNS.id,
            _COLUMNS.kind,
            _COLUMNS.key,
            _COLUMNS.payload,
            _COLUMNS.attempts,
            _COLUMNS.max_attempts,
            _COLUMNS.locked_until,
        )
    )


def _claim(
    session: Session,
    *,
    kind_filter: Sequence[str] | None,
    job_id: int | None,
    limit: int,
    worker_id: str,
    now: datetime,
    grace_s: float,
) -> list[ClaimedJob]:
    registered = kinds()
    names = tuple(registered)
    statement = _claim_statement(
        session.get_bind().dialect.name == "postgresql", names, job_id is not None
    )
    owner = worker_id[:128]
    params: dict[str, Any] = {
        "now": now,
        "limit": limit,
        "owner": owner,
        "lease_default": now + _lease_for(None, grace_s),
    }
    params.update(
        (f"lease_{n}", now + _lease_for(registered[name], grace_s)) for n, name in enumerate(names)
    )
    if job_id is not None:
        params["job_id"] = job_id
    else:
        params["kinds"] = list(kind_filter or ())
    rows = session.connection().execute(statement, params).all()
    return sorted(
        (
            ClaimedJob(
                id=int(row[0]),
                kind=str(row[1]),
                key=str(row[2]),
                payload=dict(row[3] or {}),
                attempt=int(row[4]),
                max_attempts=int(row[5]),
                worker_id=owner,
                locked_until=row[6],
            )
            for row in rows
        ),
        key=lambda claimed: claimed.id,
    )


def claim_due(
    session_factory: sessionmaker[Session],
    *,
    worker_id: str,
    queues: Iterable[str] | None = None,
    limit: int = 1,
    now: datetime | None = None,
    lease_grace_s: float = DEFAULT_LEASE_GRACE_S,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs (oldest due first) of the kinds registered in this process
    (on ``queues`` when given) and commit the claim."""
    now = now or utcnow()
    wanted = set(queues) if queues is not None else None
    registered = [k.name for k in kinds().values() if wanted is None or k.queue in wanted]
    if not registered:
        return []
    with session_factory() as session, session.begin():
        return _claim(
            session,
            kind_filter=registered,
            job_id=None,
            limit=limit,
            worker_id=worker_id,
            now=now,
            grace_s=lease_grace_s,
        )


def claim_job(
    session_factory: sessionmaker[Session],
    job_id: int,
    *,
    worker_id: str,
    now: datetime | None = None,
    lease_grace_s: float = DEFAULT_LEASE_GRACE_S,
) -> ClaimedJob | None:
    """Claim one job by id if it is due (a broker delivered its id); None when it is not (done,
    running under another live claim, or not yet due: a redelivery changes nothing)."""
    now = now or utcnow()
    with session_factory() as session, session.begin():
        claimed = _claim(
            session,
            kind_filter=None,
            job_id=job_id,
            limit=1,
            worker_id=worker_id,
            now=now,
            grace_s=lease_grace_s,
        )
    return claimed[0] if claimed else None


# ---------------------------------------------------------------------------------- run


def backoff_delay(spec: JobKind, attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before the retry after failed attempt ``attempt`` (1-based): exponential
    (``base * 2**(attempt-1)``, capped) with "equal jitter": half fixed, half random, so that
    jobs failing together do not retry together yet each waits at least half the step."""
    step: float = min(spec.backoff_cap_s, spec.backoff_base_s * (2 ** max(attempt - 1, 0)))
    return step / 2 + rng() * step / 2


def _reason_of(exc: BaseException) -> str:
    """The stored reason: a JobError's own (PHI-free by contract), else the type only (an
    arbitrary exception's message may quote data)."""
    if isinstance(exc, JobError):
        return exc.reason[:512] or type(exc).__name__
    return f"internal error ({type(exc).__name__})"


@functools.lru_cache(maxsize=16)
def _record_statement(columns: tuple[str, ...]) -> Any:
    """The fenced outcome UPDATE for one set of columns (built once per set)."""
    return (
        update(_T)
        .where(
            _COLUMNS.id == bindparam("job_id"),
            _COLUMNS.status == "running",
            _COLUMNS.attempts == bindparam("attempt"),
            _COLUMNS.lease_owner == bindparam("owner"),
        )
        .values(
            {column: bindparam(f"v_{column}", type_=_COLUMNS[column].type) for column in columns}
        )
    )


def _record(
    session_factory: sessionmaker[Session], claimed: ClaimedJob, values: dict[str, Any]
) -> bool:
    values = {"updated_at": utcnow(), "lease_owner": None, "locked_until": None, **values}
    columns = tuple(sorted(values))
    params = {f"v_{column}": values[column] for column in columns}
    params.update(job_id=claimed.id, attempt=claimed.attempt, owner=claimed.worker_id)
    with session_factory() as session, session.begin():
        outcome = session.connection().execute(_record_statement(columns), params)
        return bool(getattr(outcome, "rowcount", 0) == 1)


def _check_result(result: object) -> dict[str, Any] | None:
    if result is None:
        return None
    if not isinstance(result, dict):
        raise PermanentJobError("the handler returned a result that is not an object")
    if len(json_dumps(result).encode()) > MAX_RESULT_BYTES:
        raise PermanentJobError(f"the result is over {MAX_RESULT_BYTES} bytes")
    return result


def _run_handler(
    spec: JobKind, claimed: ClaimedJob, ctx: JobContext, rng: Callable[[], float]
) -> dict[str, Any]:
    """Run the handler; the column values its outcome records."""
    try:
        result = _check_result(spec.handler(ctx, dict(claimed.payload)))
    except PermanentJobError as exc:
        return {"status": "dead", "last_error": _reason_of(exc), "finished_at": utcnow()}
    except Exception as exc:  # noqa: BLE001 - any other failure of a handler is retried
        log.warning(
            "job attempt failed",
            extra={
                "job_id": claimed.id,
                "kind": claimed.kind,
                "attempt": claimed.attempt,
                "error_type": type(exc).__name__,
            },
        )
        if claimed.attempt >= claimed.max_attempts:
            return {"status": "dead", "last_error": _reason_of(exc), "finished_at": utcnow()}
        after = exc.retry_after_s if isinstance(exc, RetryableJobError) else None
        delay = timedelta(
            seconds=after if after is not None else backoff_delay(spec, claimed.attempt, rng)
        )
        return {
            "status": "failed",
            "last_error": _reason_of(exc),
            "next_attempt_at": utcnow() + delay,
        }
    return {"status": "succeeded", "result": result, "last_error": None, "finished_at": utcnow()}


def execute(
    claimed: ClaimedJob,
    *,
    settings: Settings,
    session_factory: sessionmaker[Session],
    resources: ResourcePool | None = None,
    rng: Callable[[], float] = random.random,
) -> RunOutcome:
    """Run a claimed job's handler and record the outcome (fenced by the claim's attempt)."""
    spec = get_kind(claimed.kind)
    values: dict[str, Any]
    if spec is None:  # claim_due only takes registered kinds; claim_job may not
        reason = f"job kind {claimed.kind!r} is not registered in this worker"
        values = {"status": "dead", "last_error": reason, "finished_at": utcnow()}
    elif claimed.attempt > claimed.max_attempts:
        # Every earlier claim ended without an outcome (the worker died or overran its lease).
        reason = f"no outcome after {claimed.max_attempts} attempts (lease expired)"
        values = {"status": "dead", "last_error": reason, "finished_at": utcnow()}
    else:
        ctx = JobContext(
            job_id=claimed.id,
            key=claimed.key,
            kind=claimed.kind,
            attempt=claimed.attempt,
            settings=settings,
            session_factory=session_factory,
            resources=resources if resources is not None else ResourcePool(settings),
        )
        values = _run_handler(spec, claimed, ctx, rng)
    status = str(values["status"])
    recorded = _record(session_factory, claimed, values)
    extra = {"job_id": claimed.id, "kind": claimed.kind, "attempt": claimed.attempt}
    if recorded:
        log.info("job attempt finished", extra={**extra, "status": status})
    else:
        log.warning("job outcome refused: the claim was lost", extra=extra)
    return RunOutcome(claimed.id, status, recorded, values.get("last_error"))


def run_one(
    session_factory: sessionmaker[Session],
    job_id: int,
    *,
    worker_id: str,
    settings: Settings,
    resources: ResourcePool | None = None,
    lease_grace_s: float = DEFAULT_LEASE_GRACE_S,
) -> RunOutcome | None:
    """Claim job ``job_id`` and run it; None when it is not claimable now (already done, held
    by a live claim, or not due): what a redelivered broker message gets."""
    claimed = claim_job(session_factory, job_id, worker_id=worker_id, lease_grace_s=lease_grace_s)
    if claimed is None:
        return None
    return execute(claimed, settings=settings, session_factory=session_factory, resources=resources)


# ---------------------------------------------------------------------------------- operators


def get_job(session: Session, job_id: int) -> BackgroundJob:
    job = session.get(J, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    return job


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> Sequence[BackgroundJob]:
    """Newest first; ``before_id`` pages on."""
    if status is not None and status not in JOB_STATUSES:
        raise JobPayloadError(f"unknown job status (one of {', '.join(JOB_STATUSES)})")
    stmt = select(J).order_by(J.id.desc()).limit(max(1, min(limit, 1000)))
    if status:
        stmt = stmt.where(J.status == status)
    if kind:
        stmt = stmt.where(J.kind == kind)
    if before_id is not None:
        stmt = stmt.where(J.id < before_id)
    return session.scalars(stmt).all()


def replay(session: Session, job_id: int, *, now: datetime | None = None) -> BackgroundJob:
    """Queue a dead or failed job again now, with its attempts reset (flush only).

    Raises:
        NotFoundError: no such job.
        ConflictError: it is queued, running or succeeded.
    """
    now = now or utcnow()
    outcome = session.execute(
        update(J)
        .where(J.id == job_id, J.status.in_(("dead", "failed")))
        .values(
            status="queued",
            attempts=0,
            next_attempt_at=now,
            lease_owner=None,
            locked_until=None,
            finished_at=None,
            published_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    job = session.get(J, job_id, populate_existing=True)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    if getattr(outcome, "rowcount", 0) != 1:
        raise ConflictError(f"job {job_id} is {job.status} and cannot be replayed")
    _arm_notify(session)
    return job


# ---------------------------------------------------------------------------------- periodic


def tick_schedules(
    session_factory: sessionmaker[Session], settings: Settings, *, now: datetime | None = None
) -> list[int]:
    """Enqueue the periodic kinds that are due; the ids of the jobs enqueued.

    Each periodic kind's due time is claimed with a conditional UPDATE (``next_run_at <= now``),
    so one process enqueues each run however many tick. A run is skipped while the previous
    one is still queued, running or waiting to retry (slow runs do not pile up).
    """
    now = now or utcnow()
    enqueued: list[int] = []
    for spec in kinds().values():
        if spec.every is None:
            continue
        interval = float(spec.every(settings))
        if interval <= 0:
            continue
        with session_factory() as session, session.begin():
            # The first run is one interval after the schedule is first seen (as the loops
            # it replaces did: a process that starts does not seal or sweep at once).
            session.execute(
                _insert_for(session)(JobSchedule)
                .values(kind=spec.name, next_run_at=now + timedelta(seconds=interval))
                .on_conflict_do_nothing(index_elements=["kind"])
            )
            won = session.execute(
                update(JobSchedule)
                .where(JobSchedule.kind == spec.name, JobSchedule.next_run_at <= now)
                .values(next_run_at=now + timedelta(seconds=interval))
            )
            if getattr(won, "rowcount", 0) != 1:
                continue
            busy = session.execute(
                select(J.id).where(J.kind == spec.name, J.status.in_(LIVE_JOB_STATUSES)).limit(1)
            ).first()
            if busy is not None:
                continue
            job = enqueue(
                session, kind=spec.name, key=f"periodic:{spec.name}:{now.isoformat()}", payload={}
            )
            session.execute(
                update(JobSchedule)
                .where(JobSchedule.kind == spec.name)
                .values(last_enqueued_at=now, last_job_id=job.id)
            )
            enqueued.append(job.id)
    return enqueued


def prune_succeeded(session: Session, *, older_than: datetime) -> int:
    """Delete succeeded jobs finished before ``older_than`` (dead and failed ones stay for
    replay); how many."""
    outcome = session.execute(delete(J).where(J.status == "succeeded", J.finished_at < older_than))
    return int(getattr(outcome, "rowcount", 0) or 0)
