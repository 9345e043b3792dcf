"""ORM tables, all on one :class:`cds_service.db.base.Base` metadata.

Every table module is imported here so that Alembic autogenerate and ``alembic check`` see them.
"""

from cds_service.db.base import Base
from cds_service.models.audit import AuditRecord
from cds_service.models.audit_checkpoint import AuditCheckpoint

__all__ = ["AuditCheckpoint", "AuditRecord", "Base"]
