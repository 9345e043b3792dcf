"""The audit trail's periodic jobs (issue 17), each once across all processes
(``cds_service.jobs`` periodic schedule), on the ``maintenance`` queue.

``audit.seal`` (was the API's ``_seal_periodically``) runs every
``ONCOCDS_AUDIT__CHECKPOINT_INTERVAL_SECONDS``; sealing also takes its own database lock, so a
concurrent ``oncocds audit checkpoint`` is safe.

``audit.archive`` (retention) runs every ``ONCOCDS_AUDIT__ARCHIVE_INTERVAL_SECONDS``, off by
default: it moves the sealed records older than the retention window out of the live trail
into verified files (:func:`cds_service.compliance.retention.archive_expired`, the function
``oncocds audit archive`` runs), so a site turns it on deliberately. It never archives inside
the window.
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


def _archive_every(settings: Settings) -> float:
    return float(settings.audit.archive_interval_seconds)


@job_kind(
    "audit.archive",
    queue="maintenance",
    max_attempts=3,
    # Sealing, verifying and writing up to checkpoint_max_records records per checkpoint.
    time_limit_s=3600.0,
    backoff_base_s=60.0,
    every=_archive_every,
)
def archive_expired_records(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Archive the sealed records older than the retention window (never inside it)."""
    from cds_service.audit import AuditTrail
    from cds_service.audit.archive import ArchiveError
    from cds_service.audit.signing import keyring_for
    from cds_service.compliance.retention import archive_expired

    settings = ctx.settings
    signer = ctx.resource(SIGNER)
    try:
        run = archive_expired(
            ctx.engine,
            AuditTrail(ctx.engine, source_observer=settings.instance_id),
            signer,
            keyring_for(signer, settings.audit.trusted_public_keys),
            settings.audit,
            agent_who=f"job:{ctx.kind}",
        )
    except (ConflictError, ArchiveError) as exc:  # a broken trail or archive: staff must look
        raise PermanentJobError(f"audit records not archived: {exc.message}") from exc
    if run.remaining is not None and not run.remaining.ok:
        first = run.remaining.first_problem
        where = first.seq if first is not None else "?"
        raise PermanentJobError(f"audit trail does not verify after archiving (seq {where})")
    archived = run.archived
    return {
        "before": run.before.isoformat(),
        "records": archived.records,
        "firstSeq": archived.first_seq if archived.path else None,
        "throughSeq": archived.through_seq if archived.path else None,
        "file": archived.path.name if archived.path else None,
        "sha256": archived.sha256,
    }
