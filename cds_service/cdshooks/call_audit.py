"""What one CDS Hooks call hands the audit trail: who and where (:class:`CallMeta`,
:class:`CallAudit`), and what its service asked to have audited with it.

A clinical service adds records (``analysis.create``) with :meth:`CallAudit.add_event` and names
entities (the analysis it linked) with :meth:`CallAudit.link`; the runtime appends them with the
call's own record in one transaction, whatever the outcome (``CdsHooksRuntime.call``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_service.audit.service import AuditEntity


@dataclass(frozen=True, slots=True)
class CallMeta:
    """Request identifiers for the audit trail."""

    request_id: str | None
    remote_addr: str | None


@dataclass(slots=True)
class CallAudit:
    """The audit side of one hook call (identifiers only, never clinical content or tokens)."""

    agent_who: str
    agent_user: str | None = None
    tenant: str | None = None
    patient_id: str | None = None
    hook_instance: str | None = None
    request_id: str | None = None
    remote_addr: str | None = None
    #: Records (keyword arguments of ``AuditTrail.record``) to append with the call's own.
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Entities the call's record names besides its cards.
    entities: list[AuditEntity] = field(default_factory=list)

    def add_event(self, event: dict[str, Any]) -> None:
        """Append ``event`` (keyword arguments of ``AuditTrail.record``) with the call's record."""
        self.events.append(event)

    def link(self, type_: str, ident: str, *, role: str | None = None) -> None:
        """Name an entity (e.g. the analysis behind the report card) in the call's record."""
        entity: AuditEntity = {"type": type_, "id": ident}
        if role is not None:
            entity["role"] = role
        self.entities.append(entity)

    def identifiers(self) -> dict[str, Any]:
        """The fields every record of this call carries (``AuditTrail.record`` keywords)."""
        return {
            "agent_who": self.agent_who,
            "agent_user": self.agent_user,
            "tenant": self.tenant,
            "patient_id": self.patient_id,
            "hook_instance": self.hook_instance,
            "request_id": self.request_id,
            "remote_addr": self.remote_addr,
        }
