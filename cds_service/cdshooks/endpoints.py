"""HTTP endpoints: ``GET /cds-services``, ``POST /cds-services/{id}``, ``POST …/{id}/feedback`` and
``GET /api/v1/feedback/summary``.

Every CDS Hooks route authenticates the client JWT *before* FastAPI reads or validates the body
(:class:`ClientJwtRoute`), so an unauthenticated caller learns nothing, not even whether its body
parses (CDS Hooks 2.0 §Trusting CDS Clients: the JWT is on every call, discovery included).
The feedback summary is for the governance committee, i.e. staff: it takes a staff bearer token
(:mod:`cds_service.compliance.auth`, permission ``feedback.read``), never a client JWT.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cds_service.cdshooks.call_audit import CallMeta
from cds_service.cdshooks.feedback import feedback_summary as summarise_feedback
from cds_service.cdshooks.feedback import store_feedback
from cds_service.cdshooks.schemas import (
    SERVICE_ID,
    CdsRequest,
    CdsResponse,
    DiscoveryResponse,
    FeedbackRequest,
    FeedbackResponse,
    FeedbackSummary,
)
from cds_service.cdshooks.service import CdsHooksRuntime
from cds_service.compliance.auth import FeedbackReadPrincipal
from cds_service.db.session import get_session
from cds_service.errors import BadRequestError
from cds_service.security.deps import authenticate_client
from cds_service.security.jwt import VerifiedClient

#: The request session, committed *before* the response is sent: a client may send feedback
#: about a card the moment it receives it.
CommittedSession = Annotated[Session, Depends(get_session, scope="function")]


def _runtime(request: Request) -> CdsHooksRuntime:
    runtime: CdsHooksRuntime = request.app.state.cds_hooks
    return runtime


def _meta(request: Request) -> CallMeta:
    state = request.scope.get("state", {})
    rid = state.get("request_id")
    return CallMeta(
        request_id=str(rid) if rid else None,
        remote_addr=request.client.host if request.client else None,
    )


def authenticate(request: Request) -> VerifiedClient:
    """Verify the bearer JWT; on any failure audit the reason and raise a bare 401.

    Raises:
        AuthenticationError: rendered as a bare 401.
    """
    return authenticate_client(request)


class ClientJwtRoute(APIRoute):
    """An APIRoute that authenticates the CDS client before anything else runs."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            request.state.cds_client = await run_in_threadpool(authenticate, request)
            await _parse_json_body(request)
            return await original(request)

        return handler


async def _parse_json_body(request: Request) -> None:
    """Parse a JSON body with orjson for FastAPI (a CDS Hooks call carries ~100 KB of
    prefetch; the stdlib parser was a tenth of a patient-view). FastAPI reads what
    ``Request.json()`` caches in ``_json``; whatever orjson refuses (integers beyond 64 bits,
    lone surrogates, malformed JSON) is left to the stdlib parser and FastAPI's own errors."""
    if request.method != "POST":
        return
    body = await request.body()
    if not body:
        return
    try:
        request._json = orjson.loads(body)
    except orjson.JSONDecodeError:
        return


def _caller(request: Request) -> VerifiedClient:
    caller: VerifiedClient = request.state.cds_client
    return caller


Caller = Annotated[VerifiedClient, Depends(_caller)]
ServiceId = Annotated[str, Path(pattern=SERVICE_ID.pattern, max_length=128)]

router = APIRouter(route_class=ClientJwtRoute, tags=["CDS Hooks"])

_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Client JWT missing or invalid (no body)"},
}


@router.get(
    "/cds-services",
    summary="CDS Hooks discovery",
    responses=_AUTH_RESPONSES,
    response_model=DiscoveryResponse,
    response_model_exclude_none=True,
)
def discovery(request: Request, caller: Caller) -> dict[str, Any]:
    """Every registered CDS service (CDS Hooks 2.0 §Discovery)."""
    return _runtime(request).discovery()


@router.post(
    "/cds-services/{service_id}",
    summary="Call a CDS service",
    response_model=CdsResponse,
    response_model_exclude_none=True,
    responses={
        **_AUTH_RESPONSES,
        400: {"description": "Malformed request (OperationOutcome)"},
        403: {"description": "fhirServer not allowed for this client (OperationOutcome)"},
        404: {"description": "Unknown service (OperationOutcome)"},
        412: {"description": "Required prefetch data unobtainable (OperationOutcome)"},
    },
)
def call_service(
    request: Request,
    service_id: ServiceId,
    body: CdsRequest,
    caller: Caller,
) -> Response:
    """Run the service's hook and return cards (CDS Hooks 2.0 §Calling a CDS Service)."""
    # No request session: the cards commit with the call's audit record (CdsHooksRuntime.call).
    response = _runtime(request).call(service_id, body, caller, _meta(request))
    # Rendered here, not by FastAPI: the model is already valid, and validating a response
    # that carries a whole DiagnosticReport again cost more than the interpretation did.
    return Response(response.to_json_bytes(), media_type="application/json")


@router.post(
    "/cds-services/{service_id}/feedback",
    summary="Feedback on cards",
    responses={**_AUTH_RESPONSES, 404: {"description": "Unknown card (OperationOutcome)"}},
)
def feedback(
    request: Request,
    service_id: ServiceId,
    body: FeedbackRequest,
    caller: Caller,
    session: CommittedSession,
) -> FeedbackResponse:
    """Store the outcome of cards (CDS Hooks 2.0 §Feedback), idempotently."""
    return store_feedback(
        _runtime(request).audit, service_id, body.feedback, caller, session, _meta(request)
    )


#: Staff routes: a bearer token from the site's OIDC provider, not a CDS client JWT.
governance_router = APIRouter(tags=["Feedback"])


@governance_router.get(
    "/api/v1/feedback/summary",
    summary="Card acceptance and override counts for governance review",
    responses={
        401: {"description": "Staff bearer token missing or invalid"},
        403: {"description": "The feedback.read permission is required"},
    },
    response_model_exclude_none=True,
)
def feedback_summary(
    request: Request,
    *,
    principal: FeedbackReadPrincipal,
    session: CommittedSession,
    service: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> FeedbackSummary:
    """Per service and card kind: accepted, overridden, and the override reasons chosen.

    For the governance committee (staff): needs ``feedback.read`` (roles ``governance`` and
    ``compliance``). The summary holds counts and reason codes only, no patient identifiers.

    ``since``/``until`` (RFC 3339 with offset) filter on the feedback's ``outcomeTimestamp``.
    """
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise BadRequestError("since/until need a UTC offset (RFC 3339)")
    runtime = _runtime(request)
    summary = summarise_feedback(session, service=service, since=since, until=until)
    meta = _meta(request)
    # A staff read of clinical decision data: who, which filter, how many rows (no content).
    runtime.audit.record(
        action="R",
        event_type="feedback.summary",
        agent_who=principal.subject,
        agent_type="user",
        request_id=meta.request_id,
        remote_addr=meta.remote_addr,
        details={
            "service": service,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "rows": len(summary.rows),
        },
    )
    return summary
