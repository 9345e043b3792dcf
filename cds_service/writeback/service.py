"""Write-back jobs: enqueue, attempt with retries and backoff, record, audit, retry.

A job is created (``pending``) in the same unit of work as its analysis
(:func:`enqueue_writeback`). :class:`WritebackRunner` then runs a *round* of up to
``max_attempts`` attempts outside any request: transient failures (timeouts, connection errors,
429, 5xx) back off exponentially; a permanent failure (other 4xx, a refused token request) or an
exhausted round marks the job ``failed`` with the reason (status codes and error codes only, no
PHI). Failed jobs stay listed (``GET /api/v1/writeback?status=failed``) until someone retries them
(``oncocds writeback retry``); nothing is dropped silently.

Rounds run as background jobs (issue 17, :mod:`cds_service.writeback.jobs`): enqueueing a
write-back job enqueues its round (``writeback.round``) in the same transaction, and the periodic
``writeback.sweep`` (every ``ONCOCDS_WRITEBACK__SWEEP_INTERVAL_SECONDS``, once across all
processes) runs pending jobs nobody runs (rows from before the job system, rounds whose job
gave up). A round first *claims* its write-back job (:func:`repository.claim_writeback_job`): a
lease on ``next_attempt`` that each attempt renews, so the round job, the sweep and ``oncocds
writeback run-due`` never post the same job twice at once.

The runner commits its own short transactions after every attempt (like the audit trail): the
job's state must be visible and durable while the round is still sleeping between attempts, and
survive a crash. Every attempt is audited (``writeback.attempt``) with identifiers only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from cds_service.analyses import repository
from cds_service.audit import AuditTrail
from cds_service.audit.service import Outcome
from cds_service.db.base import utcnow
from cds_service.errors import ConflictError, NotFoundError, OncoCDSError
from cds_service.jobs import enqueue
from cds_service.models.analysis import Analysis, WritebackJob
from cds_service.settings import WritebackSettings
from integrations.fhir.smart_backend import (
    AssertionSigner,
    SmartAuthError,
    SmartBackendClient,
    TransactionResult,
    WritebackHttpError,
    load_private_key,
)

log = logging.getLogger(__name__)

#: The job kind that runs one write-back round (registered in ``cds_service.writeback.jobs``).
ROUND_KIND = "writeback.round"


class WritebackConfigError(OncoCDSError):
    """Write-back is not configured, or its key cannot be read."""

    status_code = 503
    code = "exception"


def enqueue_writeback(
    session: Session, analysis: Analysis, settings: WritebackSettings
) -> WritebackJob | None:
    """Create a ``pending`` job for ``analysis`` when write-back is configured; flush only.

    Returns:
        The job, or ``None`` when no FHIR server / credentials are configured.
    """
    if not settings.enabled:
        return None
    assert settings.fhir_base_url is not None
    now = utcnow()
    job = WritebackJob(
        id=str(uuid.uuid4()),
        analysis_id=analysis.id,
        fhir_base_url=settings.fhir_base_url,
        status="pending",
        attempts=0,
        created=now,
        updated=now,
        next_attempt=now,
        last_error=None,
        response_locations=[],
    )
    job = repository.add_writeback_job(session, job)
    # Its round runs as a background job (``writeback.round``, cds_service/writeback/jobs.py),
    # committed with the analysis and the write-back job: the transactional outbox.
    enqueue(
        session,
        kind=ROUND_KIND,
        key=f"{repository.ROUND_KEY_PREFIX}{job.id}",
        payload={"writebackJobId": job.id},
    )
    return job


def build_client(settings: WritebackSettings) -> SmartBackendClient:
    """A SMART Backend Services client from the ``writeback`` settings section.

    Raises:
        WritebackConfigError: write-back is not fully configured or the key is unreadable.
    """
    if not settings.enabled:
        raise WritebackConfigError(
            "write-back is not configured (ONCOCDS_WRITEBACK__FHIR_BASE_URL, __TOKEN_URL, "
            "__CLIENT_ID, __PRIVATE_KEY_PATH and __KID are all required)"
        )
    assert settings.private_key_path is not None
    assert settings.client_id
    assert settings.kid
    assert settings.token_url
    try:
        key = load_private_key(settings.private_key_path.read_bytes(), settings.alg)
    except (OSError, ValueError) as exc:
        raise WritebackConfigError(
            f"write-back private key {settings.private_key_path} cannot be used for "
            f"{settings.alg} ({type(exc).__name__})"
        ) from exc
    signer = AssertionSigner(
        client_id=settings.client_id, key=key, kid=settings.kid, alg=settings.alg
    )
    return SmartBackendClient(
        token_url=settings.token_url,
        signer=signer,
        scope=settings.scope,
        timeout=settings.timeout_seconds,
    )


class WritebackRunner:
    """Runs write-back rounds for jobs.

    Args:
        settings: the ``writeback`` section (attempts, backoff, limits, client id for audit).
        sessions: a session factory on the service's database.
        audit: the audit trail.
        client: the SMART Backend Services client (one per runner; it caches the token).
        sleep: how to wait between attempts (tests pass a recorder; production ``time.sleep``).
    """

    def __init__(
        self,
        settings: WritebackSettings,
        sessions: sessionmaker[Session],
        audit: AuditTrail,
        client: SmartBackendClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._audit = audit
        self._client = client
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def _lease(self) -> timedelta:
        """How long one attempt may hold its job: a token request and a transaction, each
        up to the timeout, plus the longest backoff before the next attempt and a margin."""
        s = self._settings
        return timedelta(seconds=2 * s.timeout_seconds + s.max_backoff_seconds + 30)

    def _delay(self, attempt_in_round: int) -> float:
        delay = self._settings.backoff_seconds * (2 ** (attempt_in_round - 1))
        return float(min(delay, self._settings.max_backoff_seconds))

    def run(
        self, job_id: str, *, owner: str = "runner", take_over: str | None = None
    ) -> WritebackJob:
        """One round of attempts for a ``pending`` job; returns the job as finally stored.

        ``owner`` names this round's claim; ``take_over``: a claim whose owner starts with it
        is taken over even before its lease ends (see
        :func:`repository.claim_writeback_job`). Each attempt's outcome is recorded only while
        this round still holds the claim.

        Raises:
            NotFoundError: no such job.
            ConflictError: the job is not pending (done, or failed: use :meth:`retry`), or
                another runner holds it.
        """
        now = utcnow()
        with self._sessions.begin() as session:
            job = repository.get_writeback_job(session, job_id)
            if job is None:
                raise NotFoundError("no such write-back job")
            if job.status != "pending":
                raise ConflictError(f"write-back job is {job.status}, not pending")
            if not repository.claim_writeback_job(
                session,
                job_id,
                now=now,
                until=now + self._lease(),
                owner=owner,
                take_over=take_over,
            ):
                raise ConflictError("write-back job is being run by another runner")
        for attempt_in_round in range(1, self._settings.max_attempts + 1):
            job, finished = self._attempt(
                job_id,
                owner=owner,
                last=attempt_in_round == self._settings.max_attempts,
                delay=self._delay(attempt_in_round),
            )
            if finished:
                return job
            self._sleep(self._delay(attempt_in_round))
        return job

    def retry(self, job_id: str, *, owner: str = "retry") -> WritebackJob:
        """Put a ``failed`` (or stalled ``pending``) job back to pending and run a new round.

        Raises:
            NotFoundError: no such job.
            ConflictError: the job is already done.
        """
        with self._sessions.begin() as session:
            job = repository.get_writeback_job(session, job_id)
            if job is None:
                raise NotFoundError("no such write-back job")
            if job.status == "done":
                raise ConflictError("write-back job is already done")
            job.status = "pending"
            job.next_attempt = utcnow()
            job.updated = utcnow()
        return self.run(job_id, owner=owner)

    def retry_all_failed(self, *, limit: int = 100) -> list[WritebackJob]:
        with self._sessions() as session:
            ids = [
                j.id for j in repository.list_writeback_jobs(session, status="failed", limit=limit)
            ]
        return [self.retry(job_id) for job_id in ids]

    def run_due(
        self, *, now: datetime | None = None, orphans_only: bool = False
    ) -> list[WritebackJob]:
        """Run every pending job whose next attempt is due (rows from before the job system,
        rounds a restart cut short); jobs another runner holds are skipped. ``orphans_only``:
        not those a live ``writeback.round`` job will run (the periodic sweep)."""
        with self._sessions() as session:
            due = repository.due_writeback_jobs(session, now or utcnow(), orphans_only=orphans_only)
            ids = [j.id for j in due]
        done: list[WritebackJob] = []
        for job_id in ids:
            try:
                done.append(self.run(job_id, owner="sweep"))
            except ConflictError:
                continue  # claimed meanwhile by another runner, or finished
        return done

    # -------------------------------------------------------------- one attempt

    def _attempt(
        self, job_id: str, *, owner: str, last: bool, delay: float
    ) -> tuple[WritebackJob, bool]:
        # Read what to send, then talk to the network with no database transaction open.
        with self._sessions() as session:
            job = repository.get_writeback_job(session, job_id)
            assert job is not None
            analysis = session.get(Analysis, job.analysis_id)
            assert analysis is not None
            body = analysis.report_bundle
            base_url = job.fhir_base_url
            patient_ref = analysis.patient_ref
            analysis_id = analysis.id
        result: TransactionResult | None = None
        error: str | None = None
        transient = False
        status_code: int | None = None
        if len(json.dumps(body)) > self._settings.max_bundle_bytes:
            error = "report bundle exceeds ONCOCDS_WRITEBACK__MAX_BUNDLE_BYTES"
        else:
            try:
                result = self._client.post_transaction(base_url, body)
            except (SmartAuthError, WritebackHttpError) as exc:
                error, transient, status_code = exc.message, exc.transient, exc.status
        with self._sessions.begin() as session:
            job = repository.get_writeback_job(session, job_id, for_update=True)
            assert job is not None
            if not _holds_claim(session, job, owner):
                return job, True
            job.attempts += 1
            attempt = job.attempts
            now = utcnow()
            job.updated = now
            if result is not None:
                job.status = "done"
                job.next_attempt = None
                job.last_error = None
                job.response_locations = list(result.locations)
                outcome = Outcome.SUCCESS
                status_code = result.status
            elif transient and not last:
                job.status = "pending"
                # Still this round's: the lease runs past the backoff, so no other runner
                # takes the job while this one sleeps; if this process dies it is due after.
                job.next_attempt = now + timedelta(seconds=delay) + self._lease()
                job.last_error = error
                outcome = Outcome.MINOR_FAILURE
            else:
                job.status = "failed"
                job.next_attempt = None
                job.last_error = (error or "failed")[:480] + (
                    " (attempts exhausted)" if transient else ""
                )
                outcome = Outcome.SERIOUS_FAILURE
            finished = job.status != "pending"
            session.flush()
            session.expunge(job)
        self._audit.record(
            action="C",
            event_type="writeback.attempt",
            event_subtype=job.status,
            outcome=outcome,
            outcome_desc=error,
            agent_who=self._settings.client_id or "oncocds",
            agent_type="system",
            patient_id=patient_ref,
            entities=[
                {"type": "Analysis", "id": analysis_id},
                {"type": "WritebackJob", "id": job.id},
            ],
            details={
                "attempt": attempt,
                "http_status": status_code,
                "fhir_host": urlsplit(job.fhir_base_url).netloc,
                "locations": len(job.response_locations or []),
            },
        )
        return job, finished


def _holds_claim(session: Session, job: WritebackJob, owner: str) -> bool:
    """Whether this round still holds ``job`` (row-locked by the caller). When not (taken
    over because this round's worker was presumed dead, or finished by another runner), the
    other's record stands and ``job`` leaves the session unchanged: what this attempt posted
    was a conditional create (``ifNoneExist``), so the EHR holds no second copy."""
    if job.claimed_by == owner and job.status == "pending":
        return True
    session.expunge(job)
    log.warning("write-back round lost its claim", extra={"job_id": job.id})
    return False


def list_jobs(session: Session, status: str | None, limit: int) -> Sequence[WritebackJob]:
    return repository.list_writeback_jobs(session, status=status, limit=limit)


_runner_lock = threading.Lock()


def app_runner(app_state: object) -> WritebackRunner:
    """The app's runner (and its cached access token), created once, on first use.

    Raises:
        WritebackConfigError: write-back is not configured or its key is unusable.
    """
    state: Any = app_state
    with _runner_lock:
        runner: WritebackRunner | None = getattr(state, "writeback_runner", None)
        if runner is None:
            settings = state.settings.writeback
            runner = WritebackRunner(
                settings, state.sessionmaker, state.audit, build_client(settings)
            )
            state.writeback_runner = runner
        return runner


def run_writeback_in_background(app_state: object, job_id: str) -> None:
    """Run one write-back round for ``job_id`` now, in the caller's thread, with the app's
    runner. The service itself runs rounds as ``writeback.round`` jobs; this is for callers
    that must not wait for the executor.

    Errors are logged by type only; the job stays visible as ``pending`` or ``failed`` (never
    dropped), and a pending one is taken up again by the ``writeback.sweep`` job.
    """
    try:
        app_runner(app_state).run(job_id)
    except OncoCDSError as exc:
        log.warning(
            "write-back round not run", extra={"job_id": job_id, "error": type(exc).__name__}
        )
