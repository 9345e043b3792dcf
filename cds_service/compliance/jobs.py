"""Audit checkpoint sealing as a periodic job (issue 17; was the API's ``_seal_periodically``).

``audit.seal`` runs every ``ONCOCDS_AUDIT__CHECKPOINT_INTERVAL_SECONDS`` once across all
processes (``cds_service.jobs`` periodic schedule); sealing also takes its own database lock, so
a concurrent ``oncocds audit checkpoint`` is safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cds_service.errors import ConflictError
from cds_service.jobs import JobContext, PermanentJobError, job_kind
from cds_service.jobs.registry import worker_resource

if TYPE_CHECKING:
    from cds_service.audit.signing import CheckpointSigner
    from cds_service.settings import Settings

SIGNER = "audit.signer"


@worker_resource(SIGNER)
def _signer(settings: Settings) -> CheckpointSigner:
    from cds_service.audit.signing import signer_for

    return signer_for(settings.audit.signing_key_path, development=not settings.is_production)


def _every(settings: Settings) -> float:
    return float(settings.audit.checkpoint_interval_seconds)


@job_kind("audit.seal", queue="maintenance", max_attempts=3, time_limit_s=600.0, every=_every)
def seal_checkpoints(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    from cds_service.audit.checkpoints import seal

    try:
        created = seal(
            ctx.engine, ctx.resource(SIGNER), max_records=ctx.settings.audit.checkpoint_max_records
        )
    except ConflictError as exc:  # a broken chain: no retry can seal it; staff must look
        raise PermanentJobError(f"audit chain not sealed: {exc.message}") from exc
    return {"checkpoints": len(created), "lastSeq": created[-1].last_seq if created else None}
