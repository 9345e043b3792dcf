"""``Annotated`` dependency aliases shared by the routers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from cds_service.audit import AuditTrail
from cds_service.audit.service import Outcome, RecordedRef
from cds_service.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_audit(request: Request) -> AuditTrail:
    audit: AuditTrail = request.app.state.audit
    return audit


def request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


def remote_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


SettingsDep = Annotated[Settings, Depends(get_settings)]
AuditDep = Annotated[AuditTrail, Depends(get_audit)]
RequestIdDep = Annotated[str | None, Depends(request_id)]
RemoteAddrDep = Annotated[str | None, Depends(remote_addr)]


@dataclass(frozen=True, slots=True)
class RequestAudit:
    """The audit trail bound to one HTTP request: every record it writes carries the request's
    id and the caller's address, so a route states only who did what."""

    trail: AuditTrail
    request_id: str | None
    remote_addr: str | None

    def record(self, *, agent_who: str, **fields: Any) -> RecordedRef:
        """One record of this request (:meth:`AuditTrail.record`'s other keyword arguments)."""
        return self.trail.record(
            agent_who=agent_who,
            request_id=self.request_id,
            remote_addr=self.remote_addr,
            **fields,
        )

    def refused(self, *, agent_who: str, reason: str, **fields: Any) -> RecordedRef:
        """A refused request: a minor failure with its reason (identifiers only, never content)."""
        return self.record(
            agent_who=agent_who, outcome=Outcome.MINOR_FAILURE, outcome_desc=reason, **fields
        )


def request_audit(request: Request) -> RequestAudit:
    """The audit trail bound to ``request`` (also usable inside another dependency)."""
    return RequestAudit(get_audit(request), request_id(request), remote_addr(request))


RequestAuditDep = Annotated[RequestAudit, Depends(request_audit)]
