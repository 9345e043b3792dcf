"""Verification of the client JWT every CDS Hooks call carries (2.0 §Trusting CDS Clients).

Order of checks (CDS Hooks best practices, "JWT"): size and shape; header (``alg`` asymmetric and
allowed, ``kid``, ``typ`` JWT, no ``crit``); ``iss`` on the allowlist; key from the client's inline
(pinned) JWK Set, its configured JWK Set URL, or a ``jku`` header only when that URL is on the
client's allowlist (a pinned set answers for an allowlisted ``jku`` without a fetch; the ``jku``
is fetched only when nothing is pinned or the ``kid`` is not in the pinned set); signature;
``aud`` equal to the called endpoint's public URL; ``exp``/``iat``/``nbf`` within the clock skew
and a bounded lifetime; ``tenant`` when the client is bound to one; and finally the ``jti``
against the shared replay store (last, so a forged token cannot burn a jti).

Any failure raises :class:`JwtRejectedError` with a reason for the audit trail; the endpoint
answers a bare 401. The token itself is never logged or stored.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError

from cds_service.errors import CredentialError
from cds_service.security.clients import ASYMMETRIC_ALGORITHMS, ClientRegistry, TrustedClient
from cds_service.security.jwks import JwksCache, JwksError, PublicKey, import_key_set
from cds_service.security.replay import ReplayStore

MAX_JTI_LENGTH: Final = 256
_EC_CURVES: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class JwtRejectedError(CredentialError):
    """The token is not acceptable; ``reason`` is for the audit trail, never for the client."""

    def __init__(self, reason: str, *, iss: str | None = None, jti: str | None = None) -> None:
        super().__init__(reason)
        self.iss = iss
        self.jti = jti


@dataclass(frozen=True, slots=True)
class VerifiedClient:
    """Who called: the trusted client and the token's identifiers (never the token)."""

    client: TrustedClient
    iss: str
    jti: str
    tenant: str | None
    sub: str | None


def _b64json(segment: str, what: str) -> dict[str, Any]:
    try:
        padded = segment + "=" * (-len(segment) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise JwtRejectedError(f"malformed {what}") from exc
    if not isinstance(value, dict):
        raise JwtRejectedError(f"{what} is not a JSON object")
    return value


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise JwtRejectedError(f"missing {name}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise JwtRejectedError(f"{name} is not a number")
    return float(value)


class ClientJwtVerifier:
    """Checks bearer tokens against the trusted clients, their keys and the replay store."""

    def __init__(
        self,
        *,
        clients: ClientRegistry,
        jwks_cache: JwksCache,
        replay_store: ReplayStore,
        algorithms: frozenset[str],
        clock_skew_s: int,
        max_lifetime_s: int,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients = clients
        self._jwks = jwks_cache
        self._replay = replay_store
        self._algorithms = algorithms & ASYMMETRIC_ALGORITHMS
        self._skew = clock_skew_s
        self._max_lifetime = max_lifetime_s
        self._max_bytes = max_bytes
        self._clock = clock
        self._inline_cache: dict[str, dict[str, PublicKey]] = {}

    def verify(self, token: str, *, audience: str) -> VerifiedClient:
        """Verify ``token`` for a call to the endpoint whose public URL is ``audience``.

        Raises:
            JwtRejectedError: with the reason, whenever the token must not be accepted.
            DatabaseError: the replay store is unreachable.
        """
        if len(token) > self._max_bytes:
            raise JwtRejectedError("token exceeds the size limit")
        parts = token.split(".")
        if len(parts) != 3 or not all(parts[:2]):
            raise JwtRejectedError("not a compact JWS")
        header = _b64json(parts[0], "header")
        unverified = _b64json(parts[1], "payload")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise JwtRejectedError(f"algorithm not accepted: {str(alg)[:16]}")
        if str(header.get("typ", "")).upper() != "JWT":
            raise JwtRejectedError("typ is not JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise JwtRejectedError("missing kid")
        if "crit" in header:
            raise JwtRejectedError("crit header not supported")
        iss = unverified.get("iss")
        if not isinstance(iss, str) or not iss:
            raise JwtRejectedError("missing iss")
        client = self.clients.get(iss)
        if client is None:
            raise JwtRejectedError("untrusted iss", iss=iss[:512])
        if alg not in client.algorithms:
            raise JwtRejectedError(f"algorithm not accepted for this client: {alg}", iss=iss)
        key = self._key_for(client, header, kid)
        self._check_key_type(alg, key, iss)
        try:
            decoded = jose_jwt.decode(token, key, algorithms=[alg])
        except JoseError as exc:
            raise JwtRejectedError(f"signature invalid ({type(exc).__name__})", iss=iss) from exc
        except (ValueError, TypeError) as exc:
            raise JwtRejectedError("token could not be verified", iss=iss) from exc
        claims = dict(decoded.claims)
        if claims.get("iss") != iss:
            raise JwtRejectedError("iss changed", iss=iss)
        return self._check_claims(client, claims, audience)

    def _pinned_keys(self, client: TrustedClient) -> dict[str, PublicKey]:
        """The key set pinned inline in the clients file for ``client`` (empty: none pinned)."""
        if client.jwks is None:
            return {}
        keys = self._inline_cache.get(client.iss)
        if keys is None:
            keys = import_key_set(client.jwks)
            self._inline_cache[client.iss] = keys
        return keys

    def _key_for(self, client: TrustedClient, header: Mapping[str, Any], kid: str) -> PublicKey:
        jku = header.get("jku")
        try:
            if jku is not None:
                # CDS Hooks 2.0: SHOULD allowlist jku URLs; only allowlisted ones are honoured.
                if not isinstance(jku, str) or jku not in client.jku_allowlist:
                    raise JwtRejectedError("jku not on the client's allowlist", iss=client.iss)
                # A key set pinned for this issuer stands for its allowlisted jku: no fetch
                # (a hospital network cannot be assumed to reach the vendor's URL). The jku is
                # fetched only when nothing is pinned or the kid is not in the pinned set
                # (key rotation), through the cache and its refetch limit.
                key = self._pinned_keys(client).get(kid)
                if key is None:
                    key = self._jwks.get_key(jku, kid)
            elif client.jwks is not None:
                key = self._pinned_keys(client).get(kid)
            elif client.jwks_url is not None:
                key = self._jwks.get_key(client.jwks_url, kid)
            else:
                raise JwtRejectedError("client requires a jku header", iss=client.iss)
        except JwksError as exc:
            raise JwtRejectedError(f"key set unavailable: {exc}", iss=client.iss) from exc
        if key is None:
            raise JwtRejectedError("unknown kid", iss=client.iss)
        return key

    @staticmethod
    def _check_key_type(alg: str, key: PublicKey, iss: str) -> None:
        kty = key.key_type
        if alg.startswith("ES"):
            if kty != "EC" or key.as_dict().get("crv") != _EC_CURVES[alg]:
                raise JwtRejectedError("key type does not match alg", iss=iss)
        elif kty != "RSA":
            raise JwtRejectedError("key type does not match alg", iss=iss)

    def _check_claims(
        self, client: TrustedClient, claims: Mapping[str, Any], audience: str
    ) -> VerifiedClient:
        iss = client.iss
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if audience not in audiences:
            raise JwtRejectedError("aud is not this endpoint", iss=iss)
        now = self._clock()
        exp = _number(claims, "exp", required=True)
        iat = _number(claims, "iat", required=True)
        nbf = _number(claims, "nbf", required=False)
        assert exp is not None
        assert iat is not None
        if exp <= now - self._skew:
            raise JwtRejectedError("expired", iss=iss)
        if iat > now + self._skew:
            raise JwtRejectedError("iat in the future", iss=iss)
        if nbf is not None and nbf > now + self._skew:
            raise JwtRejectedError("not yet valid (nbf)", iss=iss)
        if exp - iat > self._max_lifetime:
            raise JwtRejectedError("lifetime exceeds the limit", iss=iss)
        if exp <= iat:
            raise JwtRejectedError("exp before iat", iss=iss)
        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise JwtRejectedError("tenant is not a string", iss=iss)
        if client.tenant is not None and tenant != client.tenant:
            raise JwtRejectedError("tenant not allowed for this client", iss=iss)
        sub = claims.get("sub")
        if sub is not None and not isinstance(sub, str):
            raise JwtRejectedError("sub is not a string", iss=iss)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise JwtRejectedError("missing or invalid jti", iss=iss)
        expires_at = datetime.fromtimestamp(exp + self._skew, tz=UTC)
        if not self._replay.check_and_store(iss, jti, expires_at=expires_at):
            raise JwtRejectedError("jti replayed", iss=iss, jti=jti)
        return VerifiedClient(client=client, iss=iss, jti=jti, tenant=tenant, sub=sub)
