"""SMART Backend Services client: ``private_key_jwt`` client credentials, then FHIR transactions.

SMART App Launch 2.x, "Backend Services" and "Client Authentication: Asymmetric": the client
posts ``grant_type=client_credentials`` with a JWT assertion signed RS384 or ES384, whose header
names the registered key (``kid``) and whose claims are ``iss = sub = client_id``, ``aud`` = the
token URL, ``exp`` no more than five minutes ahead, and a fresh ``jti``.

The OAuth exchange runs through authlib's httpx ``OAuth2Client`` with the ``private_key_jwt``
method, but signing is ours (:class:`AssertionSigner`): authlib's ``PrivateKeyJWT`` defaults to
RS256, ``exp = iat + 3600`` and no ``kid``, and when given a claims dict it stores the generated
``jti`` in that dict so every later assertion repeats it (see authlib issue #857). Access tokens
are cached no longer than their ``expires_in`` (minus a small margin), and never when the server
does not say how long they live.

Errors: :class:`SmartAuthError` (the token endpoint refused us) and
:class:`WritebackHttpError` (the FHIR server or the network failed), each with ``transient``
saying whether a retry may succeed (timeouts, connection errors, 429 and 5xx). Messages hold
status codes and error codes only, never tokens, assertions or response bodies.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx2
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from integrations.errors import FhirClientError

Alg = Literal["ES384", "RS384"]
#: SMART Backend Services: "exp … no more than five minutes in the future".
MAX_ASSERTION_LIFETIME: Final = 300
#: Refresh a cached token this many seconds before the server says it expires.
TOKEN_EXPIRY_MARGIN: Final = 10
_FHIR_JSON: Final = "application/fhir+json"


class SmartAuthError(FhirClientError):
    """The token endpoint did not issue an access token."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool) -> None:
        super().__init__(message, status=status)
        self.transient = transient


class WritebackHttpError(FhirClientError):
    """Posting to the FHIR server failed (HTTP status or network error)."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool) -> None:
        super().__init__(message, status=status)
        self.transient = transient


def _is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def load_private_key(pem: bytes, alg: Alg) -> ECKey | RSAKey:
    """Import a PEM private key of the type ``alg`` needs (EC P-384 or RSA)."""
    if alg == "ES384":
        key: ECKey | RSAKey = ECKey.import_key(pem)
        if key.as_dict().get("crv") != "P-384":
            raise ValueError("ES384 needs an EC P-384 key")
        return key
    return RSAKey.import_key(pem)


@dataclass(slots=True)
class AssertionSigner:
    """Signs RFC 7523 client assertions the way SMART Backend Services requires.

    Every call returns a new JWT with a fresh random ``jti``, ``iat`` = now, ``exp`` = now +
    ``lifetime`` (at most 300 s), and a header with ``alg``, ``kid`` and ``typ=JWT``.
    """

    client_id: str
    key: ECKey | RSAKey
    kid: str
    alg: Alg
    lifetime: int = MAX_ASSERTION_LIFETIME
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        if not 0 < self.lifetime <= MAX_ASSERTION_LIFETIME:
            raise ValueError("assertion lifetime must be 1-300 seconds (SMART Backend Services)")

    def __call__(self, audience: str) -> str:
        now = int(self.clock())
        header = {"alg": self.alg, "kid": self.kid, "typ": "JWT"}
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(header, claims, self.key, algorithms=[self.alg])


class _SmartPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """authlib's ``private_key_jwt`` client-auth method with our signer in place of its own."""

    def __init__(self, signer: AssertionSigner, token_endpoint: str) -> None:
        super().__init__(token_endpoint=token_endpoint, alg=signer.alg)
        self._signer = signer

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return self._signer(token_endpoint)


@dataclass(frozen=True, slots=True)
class TransactionResult:
    status: int
    #: ``location`` of each transaction-response entry (e.g. ``Observation/12/_history/1``).
    locations: tuple[str, ...]


class SmartBackendClient:
    """Fetches (and caches) a backend access token and posts FHIR transaction Bundles.

    Args:
        token_url: the authorisation server's token endpoint (also the assertion ``aud``).
        signer: builds each client assertion.
        scope: space-separated ``system/…`` scopes.
        timeout: seconds per HTTP request.
        clock: monotonic-enough time source for the token cache (tests pass their own).
    """

    def __init__(
        self,
        *,
        token_url: str,
        signer: AssertionSigner,
        scope: str,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token_url = token_url
        self._scope = scope
        self._clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._oauth = OAuth2Client(
            client_id=signer.client_id,
            scope=scope,
            token_endpoint=token_url,
            token_endpoint_auth_method=_SmartPrivateKeyJWT.name,
            timeout=timeout,
            follow_redirects=False,
        )
        self._oauth.register_client_auth_method(_SmartPrivateKeyJWT(signer, token_url))
        self._oauth.register_compliance_hook("access_token_response", self._check_token_response)
        self.token_requests = 0

    def close(self) -> None:
        self._oauth.close()

    def __enter__(self) -> SmartBackendClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _check_token_response(response: httpx2.Response) -> httpx2.Response:
        status = response.status_code
        if status >= 400:
            code = "unknown"
            try:
                body = response.json()
                if isinstance(body, dict) and isinstance(body.get("error"), str):
                    code = body["error"][:64]
            except ValueError:
                pass
            raise SmartAuthError(
                f"token endpoint answered {status} ({code})",
                status=status,
                transient=_is_transient_status(status),
            )
        return response

    def access_token(self) -> str:
        """A valid access token, fetched when the cached one is missing or about to expire.

        Raises:
            SmartAuthError: the token endpoint refused, failed or could not be reached.
        """
        now = self._clock()
        if self._token is not None and now < self._token_expires_at:
            return self._token
        self._token = None
        self.token_requests += 1
        try:
            token = self._oauth.fetch_token(
                self._token_url, grant_type="client_credentials", scope=self._scope
            )
        except SmartAuthError:
            raise
        except httpx2.TimeoutException as exc:
            raise SmartAuthError("token endpoint timed out", transient=True) from exc
        except httpx2.TransportError as exc:
            raise SmartAuthError(
                f"token endpoint unreachable ({type(exc).__name__})", transient=True
            ) from exc
        except Exception as exc:  # authlib's OAuthError and malformed token responses
            raise SmartAuthError(
                f"token endpoint response refused ({type(exc).__name__})", transient=False
            ) from exc
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise SmartAuthError("token response has no access_token", transient=False)
        expires_in = token.get("expires_in")
        if isinstance(expires_in, int | float) and expires_in > 0:
            # Cache no longer than the server allows (SMART: expires_in ≤ 300 s).
            self._token = access
            self._token_expires_at = now + max(0.0, float(expires_in) - TOKEN_EXPIRY_MARGIN)
        return access

    def post_transaction(self, fhir_base_url: str, bundle: dict[str, Any]) -> TransactionResult:
        """POST a transaction Bundle to ``fhir_base_url`` (FHIR R4 §http transaction).

        Raises:
            SmartAuthError: no access token.
            WritebackHttpError: non-2xx answer or network failure; ``transient`` for 429, 5xx,
                timeouts and connection errors.
        """
        token = self.access_token()
        try:
            # OAuth2Client.request with withhold_token: our own cached token goes in the header.
            response = self._oauth.request(
                "POST",
                fhir_base_url.rstrip("/"),
                json=bundle,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": _FHIR_JSON,
                    "Accept": _FHIR_JSON,
                },
                withhold_token=True,
            )
        except httpx2.TimeoutException as exc:
            raise WritebackHttpError("FHIR server timed out", transient=True) from exc
        except httpx2.TransportError as exc:
            raise WritebackHttpError(
                f"FHIR server unreachable ({type(exc).__name__})", transient=True
            ) from exc
        status = response.status_code
        if status == 401:
            # The token may have been revoked early: drop it so the next attempt fetches anew.
            self._token = None
        if status >= 300:
            raise WritebackHttpError(
                f"FHIR server answered {status}",
                status=status,
                transient=_is_transient_status(status) or status == 401,
            )
        locations: list[str] = []
        try:
            body = response.json()
        except ValueError:
            body = {}
        if isinstance(body, dict):
            for entry in body.get("entry") or []:
                location = (entry.get("response") or {}).get("location")
                if isinstance(location, str):
                    locations.append(location[:256])
        return TransactionResult(status=status, locations=tuple(locations))
