"""``GET /api/v1/writeback``: write-back jobs, e.g. ``?status=failed`` for the ones to retry.

For integration and compliance staff: a bearer token from the site's OIDC provider with the
``integration.read`` permission (:mod:`cds_service.compliance.auth`); the audit agent is its
``sub``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query

from cds_service.api.deps import AuditDep, RemoteAddrDep, RequestIdDep
from cds_service.compliance.auth import IntegrationReadPrincipal
from cds_service.db.session import DbSession
from cds_service.writeback.schemas import WritebackJobList, WritebackJobOut
from cds_service.writeback.service import list_jobs, run_due_jobs

log = logging.getLogger(__name__)


async def _sweep_periodically(app: FastAPI, interval: float, stop: asyncio.Event) -> None:
    """Run due write-back jobs every ``interval`` seconds (in a thread: rounds block) until
    ``stop`` is set; a sweep under way is finished, not abandoned with its connection."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
            return
        try:
            ran = await asyncio.to_thread(run_due_jobs, app.state)
            if ran:
                log.info("write-back sweep ran jobs", extra={"count": ran})
        except Exception as exc:  # the loop must outlive one failed sweep
            log.exception("write-back sweep failed", extra={"error_type": type(exc).__name__})


#: How long shutdown waits for a sweep under way (a round of attempts) before leaving it.
SHUTDOWN_WAIT_SECONDS = 60.0


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = app.state.settings.writeback
    interval = settings.sweep_interval_seconds if settings.enabled else 0
    stop = asyncio.Event()
    task = asyncio.create_task(_sweep_periodically(app, interval, stop)) if interval > 0 else None
    try:
        yield
    finally:
        stop.set()
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=SHUTDOWN_WAIT_SECONDS)
            except TimeoutError:
                log.warning("write-back sweep still running at shutdown; left to finish")


router = APIRouter(prefix="/api/v1/writeback", tags=["writeback"], lifespan=lifespan)


@router.get(
    "",
    response_model=WritebackJobList,
    response_model_by_alias=True,
    responses={
        401: {"description": "Staff bearer token missing or invalid"},
        403: {"description": "The integration.read permission is required"},
    },
)
def list_writeback_jobs(
    *,
    principal: IntegrationReadPrincipal,
    session: DbSession,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote: RemoteAddrDep,
    status: Literal["pending", "done", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> WritebackJobList:
    """Jobs newest first; each names its analysis, attempts, last error and next attempt."""
    jobs = list_jobs(session, status, limit)
    audit.record(
        action="R",
        event_type="writeback.list",
        agent_who=principal.subject,
        details={"status": status, "count": len(jobs)},
        request_id=request_id,
        remote_addr=remote,
    )
    return WritebackJobList(jobs=[WritebackJobOut.of(j) for j in jobs])
