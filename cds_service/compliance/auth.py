"""Bearer-token authentication of compliance staff (OAuth2 / OpenID Connect access tokens).

Validation (joserfc): the signature against the provider's JWKS (a file, or a URL fetched with
httpx and cached, refreshed once on an unknown ``kid``), an explicit algorithm allow-list
(ES256, RS256, ES384, RS384, EdDSA; never ``none`` or HS*), ``iss`` equal to the configured
issuer, ``aud`` containing the configured audience, ``exp`` and ``iat`` present and valid
(with leeway) and a bounded lifetime. Permissions come from the roles claim (``roles`` by
default; Keycloak's ``realm_access.roles`` too) or the space-separated ``scope``:
``audit.read`` to search and view, ``audit.export`` to export; the other staff routes use
``integration.read`` (HL7 inbox, write-back queue), ``integration.replay`` (HL7 replay) and
``feedback.read`` (the governance feedback summary).

A CDS client's JWT (signed by an EHR, not by the site's OIDC provider) fails the issuer and
signature checks, so clinical clients never reach audit data. The reason for a refusal goes to
the audit trail, never to the client and never with the token.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

import httpx
from fastapi import Depends, Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from cds_service.audit import AuditTrail, Outcome
from cds_service.compliance.devtoken import dev_issuer, dev_public_keyset
from cds_service.errors import AuthenticationError, CredentialError, ForbiddenError
from cds_service.settings import Settings

log = logging.getLogger(__name__)

READ: Final = "audit.read"
EXPORT: Final = "audit.export"
INTEGRATION_READ: Final = "integration.read"
INTEGRATION_REPLAY: Final = "integration.replay"
FEEDBACK_READ: Final = "feedback.read"
_MAX_TOKEN_BYTES: Final = 16 * 1024
_MAX_JWKS_BYTES: Final = 1024 * 1024
_JWKS_TTL_SECONDS: Final = 300
_JWKS_MIN_REFRESH_SECONDS: Final = 30


class TokenRejectedError(CredentialError):
    """Internal: why a token was refused (audited, never sent to the client)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated staff user (compliance, integration, governance; identifiers only)."""

    subject: str
    issuer: str
    username: str | None
    client_id: str | None
    token_id: str | None
    permissions: frozenset[str]


class _JwksSource:
    """The provider's keys: a file, a URL (cached), or the development issuer."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None) -> None:
        self._settings = settings
        self._transport = transport
        self._lock = threading.Lock()
        self._cached: KeySet | None = None
        self._fetched_at = 0.0

    def keys(self, *, refresh: bool = False) -> KeySet:
        cfg = self._settings.compliance
        if cfg.jwks_file is not None:
            try:
                return KeySet.import_key_set(json.loads(cfg.jwks_file.read_text("utf-8")))
            except (OSError, ValueError, JoseError) as exc:
                raise TokenRejectedError("configured JWKS file is unreadable") from exc
        if cfg.jwks_url:
            return self._from_url(cfg.jwks_url, refresh=refresh)
        if not self._settings.is_production:
            return dev_public_keyset(self._settings)
        raise TokenRejectedError("no JWKS configured")

    def _from_url(self, url: str, *, refresh: bool) -> KeySet:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            stale = self._cached is None or age > _JWKS_TTL_SECONDS
            if stale or (refresh and age > _JWKS_MIN_REFRESH_SECONDS):
                try:
                    with httpx.Client(transport=self._transport, timeout=5.0) as client:
                        response = client.get(url, headers={"Accept": "application/json"})
                    response.raise_for_status()
                    if len(response.content) > _MAX_JWKS_BYTES:
                        raise TokenRejectedError("JWKS document too large")
                    self._cached = KeySet.import_key_set(response.json())
                    self._fetched_at = time.monotonic()
                except (httpx.HTTPError, ValueError, JoseError) as exc:
                    log.warning("JWKS fetch failed", extra={"error_type": type(exc).__name__})
                    if self._cached is None:
                        raise TokenRejectedError("JWKS unavailable") from exc
            assert self._cached is not None
            return self._cached


def _permissions(claims: dict[str, Any], roles_claim: str) -> frozenset[str]:
    found: set[str] = set()
    roles = claims.get(roles_claim)
    if isinstance(roles, list):
        found.update(r for r in roles if isinstance(r, str))
    realm = claims.get("realm_access")
    if isinstance(realm, dict) and isinstance(realm.get("roles"), list):
        found.update(r for r in realm["roles"] if isinstance(r, str))
    scope = claims.get("scope")
    if isinstance(scope, str):
        found.update(scope.split())
    return frozenset(found)


class ComplianceAuthenticator:
    """Validates compliance bearer tokens against the configured OIDC provider."""

    def __init__(
        self, settings: Settings, *, jwks_transport: httpx.BaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._jwks = _JwksSource(settings, jwks_transport)

    @property
    def issuer(self) -> str | None:
        cfg = self._settings.compliance
        if cfg.oidc_issuer:
            return cfg.oidc_issuer
        return None if self._settings.is_production else dev_issuer(self._settings)

    def authenticate(self, token: str) -> Principal:
        """Validate ``token``.

        Raises:
            TokenRejectedError: with the reason (for the audit trail only).
        """
        cfg = self._settings.compliance
        issuer = self.issuer
        if issuer is None:
            raise TokenRejectedError("no OIDC issuer configured")
        if len(token) > _MAX_TOKEN_BYTES:
            raise TokenRejectedError("token too large")
        try:
            try:
                decoded = jwt.decode(token, self._jwks.keys(), algorithms=list(cfg.algorithms))
            except JoseError as first:
                # The provider may have rotated its key: refresh the JWKS once and retry.
                if not cfg.jwks_url:
                    raise
                log.info("token did not verify; refreshing JWKS once")
                decoded = jwt.decode(
                    token, self._jwks.keys(refresh=True), algorithms=list(cfg.algorithms)
                )
                del first
            registry = jwt.JWTClaimsRegistry(
                leeway=cfg.leeway_seconds,
                iss={"essential": True, "value": issuer},
                aud={"essential": True, "value": cfg.audience},
                exp={"essential": True},
                iat={"essential": True},
                sub={"essential": True},
            )
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise TokenRejectedError(f"token invalid: {type(exc).__name__}") from exc
        except ValueError as exc:
            raise TokenRejectedError("token malformed") from exc
        claims = decoded.claims
        lifetime = int(claims["exp"]) - int(claims["iat"])
        if lifetime > cfg.max_token_lifetime_seconds:
            raise TokenRejectedError(f"token lifetime {lifetime}s exceeds the maximum")
        return Principal(
            subject=str(claims["sub"])[:256],
            issuer=issuer,
            username=str(claims["preferred_username"])[:256]
            if claims.get("preferred_username")
            else None,
            client_id=str(claims.get("azp") or claims.get("client_id") or "")[:256] or None,
            token_id=str(claims["jti"])[:128] if claims.get("jti") else None,
            permissions=_permissions(claims, cfg.roles_claim),
        )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", None) or "(unmatched)")


def _refuse(
    request: Request,
    *,
    reason: str,
    agent_who: str,
    agent_type: str,
    permission: str,
) -> None:
    """Audit one refusal: outcome 4, the reason, the route, never the token."""
    audit: AuditTrail = request.app.state.audit
    audit.record(
        action="E",
        event_type="auth.rejected",
        event_subtype="staff-api",  # audit, HL7, write-back and feedback-summary routes
        outcome=Outcome.MINOR_FAILURE,
        outcome_desc=reason,
        agent_type="user" if agent_type == "user" else "client",
        agent_who=agent_who,
        request_id=request.scope.get("state", {}).get("request_id"),
        remote_addr=request.client.host if request.client else None,
        details={"route": _route_template(request), "required": permission},
    )


def require(permission: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the request's compliance principal holding ``permission``."""

    def dependency(request: Request) -> Principal:
        token = _bearer(request)
        if token is None:
            _refuse(
                request,
                reason="no bearer token",
                agent_who="anonymous",
                agent_type="client",
                permission=permission,
            )
            raise AuthenticationError("bearer token required")
        authenticator = _authenticator(request.app)
        try:
            principal = authenticator.authenticate(token)
        except TokenRejectedError as exc:
            _refuse(
                request,
                reason=str(exc),
                agent_who="anonymous",
                agent_type="client",
                permission=permission,
            )
            raise AuthenticationError("invalid token") from exc
        if permission not in principal.permissions:
            _refuse(
                request,
                reason=f"token lacks the {permission} role",
                agent_who=principal.subject,
                agent_type="user",
                permission=permission,
            )
            raise ForbiddenError(f"the {permission} role is required")
        return principal

    return dependency


ReadPrincipal = Annotated[Principal, Depends(require(READ))]
ExportPrincipal = Annotated[Principal, Depends(require(EXPORT))]
IntegrationReadPrincipal = Annotated[Principal, Depends(require(INTEGRATION_READ))]
IntegrationReplayPrincipal = Annotated[Principal, Depends(require(INTEGRATION_REPLAY))]
FeedbackReadPrincipal = Annotated[Principal, Depends(require(FEEDBACK_READ))]


def _authenticator(app: Any) -> ComplianceAuthenticator:
    state = app.state
    existing = getattr(state, "compliance_auth", None)
    if existing is None:
        existing = ComplianceAuthenticator(state.settings)
        state.compliance_auth = existing
    result: ComplianceAuthenticator = existing
    return result
