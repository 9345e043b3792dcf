"""FastAPI dependencies that authenticate clinical API clients with the CDS client JWT.

The clinical API (``/api/v1/analyses``) trusts the same clients, keys and replay store as the
CDS Hooks endpoints (CDS Hooks 2.0 §Trusting CDS Clients): the bearer token is signed by a
trusted client, its ``aud`` is the exact public URL called (``settings.base_url`` + the request
path) and its ``jti`` is used once. Any failure is audited (``auth.rejected``, the reason and
the route, never the token) and answered with a bare 401.

A staff token from the site's OIDC provider fails here (untrusted ``iss``), and a client JWT
fails the staff check in :mod:`cds_service.compliance.auth`, so neither opens the other's routes.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Request

from cds_service.audit import AuditTrail
from cds_service.audit.service import Outcome
from cds_service.errors import AuthenticationError
from cds_service.security.jwt import ClientJwtVerifier, JwtRejectedError, VerifiedClient

_BEARER: Final = "bearer "
_MAX_HEADER: Final = 70_000


def endpoint_url(request: Request) -> str:
    """The public URL of the called endpoint: the JWT ``aud`` must equal it exactly."""
    path = str(request.scope["path"])
    root = request.scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    base = str(request.app.state.settings.base_url)
    return base + path


def authenticate_client(request: Request) -> VerifiedClient:
    """Verify the request's bearer client JWT; on any failure audit the reason and refuse.

    Raises:
        AuthenticationError: rendered as a bare 401 (the reason is in the audit trail only).
    """
    verifier: ClientJwtVerifier = request.app.state.cds_hooks.verifier
    header = request.headers.get("authorization", "")
    try:
        if len(header) > _MAX_HEADER or header[: len(_BEARER)].lower() != _BEARER:
            raise JwtRejectedError("missing bearer token")  # noqa: TRY301 - audited below
        token = header[len(_BEARER) :].strip()
        return verifier.verify(token, audience=endpoint_url(request))
    except JwtRejectedError as exc:
        audit: AuditTrail = request.app.state.audit
        route = request.scope.get("route")
        rid = request.scope.get("state", {}).get("request_id")
        audit.record(
            action="E",
            event_type="auth.rejected",
            outcome=Outcome.MINOR_FAILURE,
            outcome_desc=exc.reason,
            agent_who=exc.iss or "unknown",
            request_id=str(rid) if rid else None,
            remote_addr=request.client.host if request.client else None,
            details={
                "reason": exc.reason,
                "route": getattr(route, "path", None),
                "jti": exc.jti,
            },
        )
        raise AuthenticationError("client authentication failed") from exc


def require_client_jwt(request: Request) -> VerifiedClient:
    """A FastAPI dependency: the trusted clinical client that signed this request's JWT.

    Declare it before any dependency that reads the body, so an unauthenticated caller learns
    nothing about its body.
    """
    return authenticate_client(request)


ClientCaller = Annotated[VerifiedClient, Depends(require_client_jwt)]
