"""One guarded HTTP GET for image data: allowlist, redirects, types, byte limits, timeouts.

Every request of the imaging fetchers goes through :meth:`GuardedHttp.get`:

1. the URL is checked against the :class:`~integrations.imaging.guards.EndpointAllowlist` and
   its host resolved (forbidden addresses refused);
2. the request is sent with ``follow_redirects=False``, ``Accept-Encoding: identity`` (a
   compressed body would be counted after inflation; we refuse ``Content-Encoding`` instead)
   and the environment's proxy settings ignored (``trust_env=False``);
3. the peer address of the connection is checked again (DNS rebinding);
4. a 3xx answer is followed only to an allowlisted URL, at most ``max_redirects`` times, and
   the credential is sent again only to the same origin;
5. the status is mapped to the error tree; the ``Content-Type`` must be one of the listed media
   types; a declared ``Content-Length`` over the byte budget is refused before reading, and the
   body is read in chunks and abandoned as soon as it passes the budget;
6. connect and read timeouts apply per request, bounded by the fetch's overall deadline, which
   is also checked between chunks (so a server trickling bytes cannot hold a worker).
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urljoin

import httpx

from integrations.imaging.errors import (
    ImageFetchTimeoutError,
    ImageNotAllowedError,
    ImageSourceRefusedError,
    ImageSourceUnavailableError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from integrations.imaging.guards import Budget, CheckedUrl, EndpointAllowlist, FetchLimits

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class BearerToken:
    """``Authorization: Bearer`` (e.g. the CDS client's ``fhirAuthorization.access_token``)."""

    token: str = field(repr=False)

    def header(self) -> str:
        return f"Bearer {self.token}"


@dataclass(frozen=True, slots=True)
class BasicCredential:
    """HTTP basic authentication (RFC 7617), e.g. a PACS service account."""

    username: str
    password: str = field(repr=False)

    def header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


Credential = BearerToken | BasicCredential


@dataclass(frozen=True, slots=True)
class MediaType:
    """A parsed ``Content-Type``: lower-case ``type/subtype`` and its parameters."""

    essence: str
    params: dict[str, str]

    @classmethod
    def parse(cls, value: str) -> MediaType:
        essence, _, rest = value.partition(";")
        params: dict[str, str] = {}
        for item in _split_params(rest):
            name, sep, val = item.partition("=")
            if sep:
                params[name.strip().lower()] = val.strip().strip('"')
        return cls(essence.strip().lower(), params)


def _split_params(text: str) -> list[str]:
    """Split ``;``-separated parameters, keeping ``;`` inside quoted values (RFC 9110 §5.6.6)."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [i for i in items if i.strip()]


@dataclass(frozen=True, slots=True)
class HttpBody:
    """A fully read, size-checked response body."""

    content: bytes
    media_type: MediaType
    host: str


class GuardedHttp:
    """The imaging fetchers' HTTP client (one per worker; thread-safe like ``httpx.Client``).

    Args:
        allowlist: endpoints that may be fetched.
        limits: byte/pixel limits, timeouts, deadline, redirects.
        transport: an httpx transport (tests at the network edge); the default opens sockets.
    """

    def __init__(
        self,
        allowlist: EndpointAllowlist,
        limits: FetchLimits | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.allowlist = allowlist
        self.limits = limits or FetchLimits()
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            headers={"Accept-Encoding": "identity", "User-Agent": "OncoCDS-imaging"},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GuardedHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def budget(self) -> Budget:
        """A fresh byte and time budget for one fetch."""
        return Budget(self.limits)

    def get(
        self,
        url: str,
        *,
        accept: str,
        allowed_types: Collection[str],
        budget: Budget,
        credential: Credential | None = None,
    ) -> HttpBody:
        """GET ``url`` under every guard; the body and its media type.

        Raises:
            ImageNotAllowedError, ImageTooLargeError, UnsupportedImageError,
            ImageSourceRefusedError, ImageSourceUnavailableError, ImageFetchTimeoutError.
        """
        checked = self.allowlist.check(url)
        first_origin = checked.origin
        for _ in range(self.limits.max_redirects + 1):
            self.allowlist.check_resolution(checked.origin)
            auth = credential if checked.origin == first_origin else None
            location = self._attempt(checked, accept, allowed_types, budget, auth)
            if isinstance(location, HttpBody):
                return location
            try:
                checked = self.allowlist.check(urljoin(checked.url, location))
            except ImageNotAllowedError as exc:
                raise ImageNotAllowedError(
                    f"redirect from {checked.origin.host} to an endpoint off the allowlist"
                ) from exc
        raise ImageSourceRefusedError(
            f"{first_origin.host}: more than {self.limits.max_redirects} redirects"
        )

    def _attempt(
        self,
        checked: CheckedUrl,
        accept: str,
        allowed_types: Collection[str],
        budget: Budget,
        credential: Credential | None,
    ) -> HttpBody | str:
        host = checked.origin.host
        remaining = budget.remaining_s()
        budget.requests += 1
        timeout = httpx.Timeout(
            connect=min(self.limits.connect_timeout_s, remaining),
            read=min(self.limits.read_timeout_s, remaining),
            write=min(self.limits.read_timeout_s, remaining),
            pool=min(self.limits.connect_timeout_s, remaining),
        )
        headers = {"Accept": accept}
        if credential is not None:
            headers["Authorization"] = credential.header()
        try:
            with self._client.stream("GET", checked.url, headers=headers, timeout=timeout) as resp:
                self.allowlist.check_peer(checked.origin, _peer_address(resp))
                status = resp.status_code
                if status in _REDIRECTS:
                    location = resp.headers.get("location")
                    if not location:
                        raise ImageSourceRefusedError(
                            f"{host}: redirect without Location", status=status
                        )
                    return str(location)
                _raise_for_status(host, status)
                media = MediaType.parse(resp.headers.get("content-type", ""))
                if media.essence not in allowed_types:
                    raise UnsupportedImageError(
                        f"{host} answered content type {media.essence or 'none'!r}, not one of "
                        + ", ".join(sorted(allowed_types))
                    )
                encoding = resp.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in {"", "identity"}:
                    raise UnsupportedImageError(f"{host} sent content-encoding {encoding!r}")
                return HttpBody(self._read(resp, host, budget), media, host)
        except httpx.TimeoutException as exc:
            raise ImageFetchTimeoutError(f"{host} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise ImageSourceUnavailableError(
                f"{host} unreachable or connection lost ({type(exc).__name__})"
            ) from exc

    @staticmethod
    def _read(resp: httpx.Response, host: str, budget: Budget) -> bytes:
        declared = resp.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > budget.remaining_bytes():
            raise ImageTooLargeError(
                f"{host} declared {declared} bytes, over the remaining "
                f"{max(budget.remaining_bytes(), 0)} of the {budget.limits.max_bytes} byte limit"
            )
        chunks: list[bytes] = []
        # No chunk size: httpx would buffer up to it before yielding, and the deadline check
        # below must run on every piece the network delivers.
        for chunk in resp.iter_raw():
            budget.spend(len(chunk))
            budget.remaining_s()
            chunks.append(chunk)
        return b"".join(chunks)


def _peer_address(resp: httpx.Response) -> str | None:
    stream = resp.extensions.get("network_stream")
    if stream is None:
        return None
    server = stream.get_extra_info("server_addr")
    if isinstance(server, tuple) and server:
        return str(server[0])
    return None


def _raise_for_status(host: str, status: int) -> None:
    if status < 300:
        return
    if status == 429 or status >= 500:
        raise ImageSourceUnavailableError(f"{host} answered {status}", status=status)
    if status in {401, 403}:
        raise ImageSourceRefusedError(f"{host} refused the credential ({status})", status=status)
    if status == 404:
        raise ImageSourceRefusedError(f"{host}: image not found (404)", status=status)
    raise ImageSourceRefusedError(f"{host} answered {status}", status=status)
