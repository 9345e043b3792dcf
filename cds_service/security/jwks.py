"""A cache of CDS clients' JWK Sets, refreshed on an unknown ``kid``.

CDS Hooks best practice: services "maintain their own rotating cache of public keys". A set is
reused for ``ttl`` seconds; a ``kid`` not in the cached set triggers one refetch, at most every
``min_refresh`` seconds per URL so that a stream of made-up ``kid`` values cannot turn the
service into a request amplifier. A ``Cache-Control`` max-age (or no-store) from the client shortens
the reuse time. Redirects are not followed and responses are size-capped.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from cds_service.errors import CredentialError

MAX_JWKS_BYTES: Final = 256 * 1024

PublicKey = ECKey | RSAKey


class JwksError(CredentialError):
    """A JWK Set could not be fetched or parsed (the message never holds key material)."""


def import_key_set(data: Mapping[str, Any]) -> dict[str, PublicKey]:
    """Public EC/RSA keys of a JWK Set by ``kid``; keys without ``kid`` or with private parts are
    skipped.

    Raises:
        JwksError: the set is malformed.
    """
    keys = data.get("keys")
    if not isinstance(keys, list):
        raise JwksError("JWK Set has no 'keys' array")
    result: dict[str, PublicKey] = {}
    for entry in keys[:100]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("kty") not in ("EC", "RSA") or "d" in entry:
            # Symmetric ("oct") keys are never trusted; a published private key is a mistake.
            continue
        try:
            key_set = KeySet.import_key_set({"keys": [entry]})
        except (JoseError, ValueError, TypeError) as exc:
            raise JwksError("JWK Set holds an invalid key") from exc
        key = key_set.keys[0]
        if isinstance(key, ECKey | RSAKey):
            result[entry["kid"]] = key
    return result


@dataclass(slots=True)
class _Entry:
    keys: dict[str, PublicKey]
    fetched_at: float
    last_attempt: float
    ttl: float


def _max_age(cache_control: str | None) -> float | None:
    """Seconds a response may be reused per its Cache-Control (RFC 9111 §5.2.2), if it says."""
    if not cache_control:
        return None
    directives = [d.strip().lower() for d in cache_control.split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name == "max-age" and value.strip().isdigit():
            return float(value.strip())
    return None


class JwksCache:
    """Thread-safe cache of remote JWK Sets keyed by URL."""

    def __init__(
        self,
        *,
        ttl_s: float,
        min_refresh_s: float,
        timeout_s: float,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._min_refresh = min_refresh_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._client = httpx.Client(
            timeout=timeout_s, follow_redirects=False, transport=transport, trust_env=False
        )
        self.fetches = 0

    def close(self) -> None:
        self._client.close()

    def get_key(self, url: str, kid: str) -> PublicKey | None:
        """The key ``kid`` of the set at ``url``, fetching or refreshing the set when needed.

        Raises:
            JwksError: the set could not be fetched.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(url)
        if entry is not None:
            if kid in entry.keys and now - entry.fetched_at < entry.ttl:
                return entry.keys[kid]
            if kid not in entry.keys and now - entry.last_attempt < self._min_refresh:
                # An unknown kid refetches at most every min_refresh seconds (no amplifier).
                return None
        keys = self._fetch(url, entry)
        return keys.get(kid)

    def _fetch(self, url: str, entry: _Entry | None) -> dict[str, PublicKey]:
        now = self._clock()
        with self._lock:
            if entry is not None:
                entry.last_attempt = now
        self.fetches += 1
        try:
            with self._client.stream("GET", url, headers={"Accept": "application/json"}) as resp:
                if resp.status_code != 200:
                    raise JwksError(f"JWK Set fetch answered HTTP {resp.status_code}")
                max_age = _max_age(resp.headers.get("cache-control"))
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksError("JWK Set larger than the limit")
        except httpx.HTTPError as exc:
            raise JwksError(f"JWK Set fetch failed: {type(exc).__name__}") from exc
        try:
            data = json.loads(bytes(body))
        except ValueError as exc:
            raise JwksError("JWK Set is not JSON") from exc
        if not isinstance(data, dict):
            raise JwksError("JWK Set is not an object")
        keys = import_key_set(data)
        with self._lock:
            # The client's Cache-Control may shorten, never lengthen, our own TTL.
            ttl = self._ttl if max_age is None else min(self._ttl, max_age)
            self._entries[url] = _Entry(keys=keys, fetched_at=now, last_attempt=now, ttl=ttl)
        return keys
