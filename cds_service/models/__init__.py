"""ORM tables, all on one :class:`cds_service.db.base.Base` metadata.

Every table module is imported here so that Alembic autogenerate and ``alembic check`` see them.
"""

from cds_service.db.base import Base
from cds_service.models.analysis import Analysis, WritebackJob
from cds_service.models.audit import AuditRecord
from cds_service.models.audit_checkpoint import AuditCheckpoint
from cds_service.models.cdshooks import CdsCard, CdsFeedback
from cds_service.models.hl7 import Hl7InboxMessage
from cds_service.models.jobs import BackgroundJob, JobSchedule
from cds_service.models.security import JwtReplay

__all__ = [
    "Analysis",
    "AuditCheckpoint",
    "AuditRecord",
    "BackgroundJob",
    "Base",
    "CdsCard",
    "CdsFeedback",
    "Hl7InboxMessage",
    "JobSchedule",
    "JwtReplay",
    "WritebackJob",
]
