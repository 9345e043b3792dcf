"""``/api/v1/hl7/messages``: the inbox for integration and compliance staff.

Listings and single messages carry metadata only (identifiers, status, counts, PHI-free
reasons). The raw message, ACKs and result summary hold PHI: they are returned only with
``include=payload``, and that read is audited. Replays are audited too.

Staff bearer tokens from the site's OIDC provider (:mod:`cds_service.compliance.auth`): reading
needs ``integration.read`` (integration and compliance staff), replaying ``integration.replay``
(integration staff only). The audit agent is the token's ``sub``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from cds_service.api.deps import AuditDep, RemoteAddrDep, RequestIdDep
from cds_service.compliance.auth import IntegrationReadPrincipal, IntegrationReplayPrincipal
from cds_service.hl7.repository import InboxRepository
from cds_service.hl7.schemas import Hl7MessageList, Hl7MessageMetadata, Hl7MessagePayload
from cds_service.hl7.service import (
    audit_payload_read,
    message_metadata,
    message_payload,
    replay,
)

router = APIRouter(prefix="/api/v1/hl7", tags=["hl7"])

Status = Literal["received", "processing", "processed", "failed", "not-processed"]


#: Inbox ids are 64-bit; anything larger is not an id (and would overflow the database driver).
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _repository(request: Request) -> InboxRepository:
    return InboxRepository(request.app.state.engine)


_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "Staff bearer token missing or invalid"},
    403: {"description": "The token lacks the required permission"},
}


@router.get("/messages", summary="List inbox messages, newest first", responses=_AUTH)
def list_messages(
    request: Request,
    *,
    principal: IntegrationReadPrincipal,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote_addr: RemoteAddrDep,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[int | None, Query(alias="beforeId", ge=1)] = None,
) -> Hl7MessageList:
    rows = _repository(request).list_messages(status=status, limit=limit, before_id=before_id)
    # Who looked at the queue, like ``writeback.list``: identifiers and counts only.
    audit.record(
        action="R",
        event_type="hl7.message.list",
        agent_who=principal.subject,
        details={"status": status, "count": len(rows)},
        request_id=request_id,
        remote_addr=remote_addr,
    )
    items = [Hl7MessageMetadata.model_validate(message_metadata(row)) for row in rows]
    return Hl7MessageList(items=items, next_before_id=items[-1].id if len(items) == limit else None)


@router.get("/messages/{message_id}", summary="One inbox message", responses=_AUTH)
def get_message(
    request: Request,
    message_id: MessageId,
    *,
    principal: IntegrationReadPrincipal,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote_addr: RemoteAddrDep,
    include: Annotated[Literal["payload"] | None, Query()] = None,
) -> Hl7MessageMetadata:
    row = _repository(request).get(message_id)
    body = Hl7MessageMetadata.model_validate(message_metadata(row))
    if include == "payload":
        audit_payload_read(
            audit, row, agent_who=principal.subject, request_id=request_id, remote_addr=remote_addr
        )
        body.payload = Hl7MessagePayload.model_validate(message_payload(row))
    return body


@router.post(
    "/messages/{message_id}/replay",
    summary="Process a failed or not-processed message again",
    responses=_AUTH,
)
def replay_message(
    request: Request,
    message_id: MessageId,
    *,
    principal: IntegrationReplayPrincipal,
    audit: AuditDep,
    request_id: RequestIdDep,
    remote_addr: RemoteAddrDep,
    force: Annotated[bool, Query()] = False,
) -> Hl7MessageMetadata:
    row = replay(
        _repository(request),
        audit,
        message_id,
        agent_who=principal.subject,
        force=force,
        request_id=request_id,
        remote_addr=remote_addr,
    )
    return Hl7MessageMetadata.model_validate(message_metadata(row))
