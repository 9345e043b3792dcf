"""Retention archiving: one function for ``oncocds audit archive`` and the ``audit.archive`` job.

Both check the date against the retention window (``ONCOCDS_AUDIT__RETENTION_YEARS``; HIPAA
§164.316(b)(2)(i): six years), archive the whole sealed checkpoints older than it
(:func:`cds_service.audit.archive.archive`: written, verified, recorded, then removed) and
verify the trail that remains. The job never archives inside the window; the CLI does only with
``--inside-retention`` (recorded in the archive event's ``before``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cds_service.audit.archive import ArchiveResult, archive
from cds_service.audit.verification import IntegrityReport, verify_integrity
from cds_service.compliance.service import retention_start
from cds_service.errors import BadRequestError

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Engine

    from cds_service.audit import AuditTrail
    from cds_service.audit.signing import CheckpointSigner, Keyring
    from cds_service.settings import AuditSettings


@dataclass(frozen=True, slots=True)
class RetentionRun:
    #: The cut-off used: records older than this, in whole checkpoints, were archived.
    before: datetime
    archived: ArchiveResult
    #: The remaining trail, verified after the removal; None when nothing was archived (then
    #: nothing was removed, and :func:`archive` had verified the whole trail before it looked).
    remaining: IntegrityReport | None


def archive_expired(
    engine: Engine,
    trail: AuditTrail,
    signer: CheckpointSigner,
    keyring: Keyring,
    settings: AuditSettings,
    *,
    agent_who: str,
    before: datetime | None = None,
    inside_retention: bool = False,
    out_dir: Path | None = None,
) -> RetentionRun:
    """Archive the sealed records older than ``before`` (default: the start of the retention
    window) to ``out_dir`` (default ``settings.archive_dir``) and, when anything was archived,
    verify what remains.

    Raises:
        BadRequestError: ``before`` is inside the retention window and ``inside_retention`` is
            false.
        ConflictError: the trail does not verify, so nothing is archived.
        ArchiveError: the written file does not verify (nothing is removed).
    """
    window = retention_start(settings.retention_years)
    cut = before or window
    if cut > window and not inside_retention:
        raise BadRequestError(
            f"--before {cut.date()} is inside the {settings.retention_years}-year "
            f"retention window (records after {window.date()} must be kept); "
            "pass --inside-retention to override"
        )
    archived = archive(
        engine,
        trail,
        signer,
        keyring,
        before=cut,
        out_dir=out_dir or settings.archive_dir,
        agent_who=agent_who,
        max_records=settings.checkpoint_max_records,
    )
    remaining = verify_integrity(engine, keyring) if archived.path is not None else None
    return RetentionRun(cut, archived, remaining)
