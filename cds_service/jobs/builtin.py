"""Kinds of the job system itself: pruning old succeeded jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cds_service.db.base import utcnow
from cds_service.jobs.registry import JobContext, job_kind
from cds_service.jobs.service import prune_succeeded

if TYPE_CHECKING:
    from cds_service.settings import Settings


def _prune_every(settings: Settings) -> float:
    return settings.jobs.prune_interval_seconds


@job_kind("jobs.prune", queue="maintenance", max_attempts=3, time_limit_s=300, every=_prune_every)
def prune(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Delete succeeded jobs older than ``retain_succeeded_days`` (periodic runs add a row each;
    dead and failed jobs stay until replayed)."""
    older_than = utcnow() - timedelta(days=ctx.settings.jobs.retain_succeeded_days)
    with ctx.session_factory() as session, session.begin():
        deleted = prune_succeeded(session, older_than=older_than)
    return {"deleted": deleted}
