"""What an image fetch may touch and consume: endpoint allowlist, address policy, limits, deadline.

**Allowlist.** An endpoint is ``scheme://host:port/path-prefix`` (e.g.
``https://pacs.example.org/dicom-web``). A URL is allowed when its scheme, host and port are
equal to an entry's (host compared case-insensitively, the port defaulted by scheme) and its
path lies *under* the entry's path at a segment boundary (``/dicom-web`` allows
``/dicom-web/studies/…`` but not ``/dicom-webx``). URLs with user info, a fragment, ``.`` or
``..`` segments, or encoded ``/``, ``\\`` or ``.`` in the path are refused: they are the usual
ways to escape a prefix check. Every redirect target goes through the same check
(:mod:`integrations.imaging.http`).

**Addresses (decision).** A host name on the allowlist may still resolve to an address no PACS
has: link-local IPv4/IPv6 (169.254.0.0/16 holds the AWS, GCP and Azure instance-metadata service
169.254.169.254), the AWS IPv6 metadata address fd00:ec2::254, Alibaba's 100.100.100.200,
unspecified, multicast and broadcast addresses. Those are refused twice: when the name is resolved
before connecting, and against the peer address of the connection actually made (so a DNS answer
that changes between the two, "DNS rebinding", is caught before the response is read). Loopback
and private (RFC 1918, ULA) addresses are **allowed**: an on-premises PACS lives there, and the
allowlist, written by the site, is the control. OWASP API Security Top 10 2023, API7 (SSRF).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

from integrations.imaging.errors import (
    CorruptImageError,
    ImageFetchTimeoutError,
    ImageNotAllowedError,
    ImageTooLargeError,
)

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_FORBIDDEN_NETWORKS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # IPv4 link-local, cloud instance metadata (RFC 3927)
        "fe80::/10",  # IPv6 link-local (RFC 4291)
        "fd00:ec2::254/128",  # AWS instance metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud instance metadata
        "0.0.0.0/8",  # "this network" (RFC 1122), unspecified
        "::/128",
        "224.0.0.0/4",  # multicast
        "ff00::/8",
        "255.255.255.255/32",
    )
)
_ENCODED_ESCAPES: Final = re.compile(r"%(2f|5c|2e)", re.IGNORECASE)

Resolver = Callable[[str, int], Sequence[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``getaddrinfo``)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def forbidden_address(address: str) -> bool:
    """True for link-local, metadata, unspecified, multicast and broadcast addresses."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in _FORBIDDEN_NETWORKS)


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A URL that passed the allowlist: its origin and normalised path (query kept apart)."""

    url: str
    origin: Origin
    path: str


def _split(url: str) -> tuple[Origin, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ImageNotAllowedError("malformed endpoint URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ImageNotAllowedError(f"scheme {scheme or 'none'!r} is not allowed")
    if parts.username is not None or parts.password is not None:
        raise ImageNotAllowedError("URLs with user information are not allowed")
    if parts.fragment:
        raise ImageNotAllowedError("URLs with a fragment are not allowed")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise ImageNotAllowedError("URL without a host")
    path = parts.path or "/"
    if _ENCODED_ESCAPES.search(path) or "\\" in path:
        raise ImageNotAllowedError("encoded path separators are not allowed")
    if any(seg in {".", ".."} for seg in unquote(path).split("/")):
        raise ImageNotAllowedError("dot segments are not allowed in the path")
    return Origin(scheme, host, port or _DEFAULT_PORTS[scheme]), path


@dataclass(frozen=True, slots=True)
class AllowedEndpoint:
    origin: Origin
    path_prefix: str

    @classmethod
    def parse(cls, url: str) -> AllowedEndpoint:
        origin, path = _split(url)
        return cls(origin, path.rstrip("/"))

    def allows(self, origin: Origin, path: str) -> bool:
        if origin != self.origin:
            return False
        prefix = self.path_prefix
        return not prefix or path == prefix or path.startswith(prefix + "/")


class EndpointAllowlist:
    """The endpoints image fetches may reach (see the module docstring for the rules).

    Args:
        endpoints: URLs such as ``https://pacs.example.org/dicom-web``; an empty list allows
            nothing.
        resolver: host → addresses; the system resolver by default (tests pass their own).
    """

    def __init__(self, endpoints: Iterable[str], *, resolver: Resolver = system_resolver) -> None:
        self._entries = tuple(AllowedEndpoint.parse(url) for url in endpoints)
        self._resolver = resolver

    @property
    def entries(self) -> tuple[AllowedEndpoint, ...]:
        return self._entries

    def check(self, url: str) -> CheckedUrl:
        """The URL, checked; raises :class:`ImageNotAllowedError` naming only the host."""
        origin, path = _split(url)
        if not any(entry.allows(origin, path) for entry in self._entries):
            raise ImageNotAllowedError(f"endpoint {origin.host} is not on the imaging allowlist")
        return CheckedUrl(url, origin, path)

    def check_resolution(self, origin: Origin) -> None:
        """Resolve the host and refuse it when any address is forbidden."""
        try:
            addresses = self._resolver(origin.host, origin.port)
        except OSError:
            return  # the connection attempt reports "unreachable" with the transport's error
        for address in addresses:
            if forbidden_address(address):
                raise ImageNotAllowedError(f"{origin.host} resolves to a forbidden address")

    @staticmethod
    def check_peer(origin: Origin, address: str | None) -> None:
        """Refuse a connection whose peer turned out to be a forbidden address."""
        if address is not None and forbidden_address(address):
            raise ImageNotAllowedError(f"{origin.host} connected to a forbidden address")


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Limits of one fetch (one image or one slide level). All are enforced before decoding.

    Attributes:
        max_bytes: bytes received over all requests of the fetch (bodies, after transfer).
        max_pixels: decoded pixels of one image (rows x columns x frames; an RGB pixel is one).
        connect_timeout_s / read_timeout_s: per request (read: between two received chunks).
        deadline_s: the whole fetch, all requests included.
        max_redirects: redirects followed per request (each one re-checked).
        frames_per_request: WADO-RS frames asked for in one request.
    """

    max_bytes: int = 256 * 1024 * 1024
    max_pixels: int = 64_000_000
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    deadline_s: float = 120.0
    max_redirects: int = 3
    frames_per_request: int = 32

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_pixels, self.frames_per_request) <= 0:
            raise ValueError("imaging limits must be positive")
        if min(self.connect_timeout_s, self.read_timeout_s, self.deadline_s) <= 0:
            raise ValueError("imaging timeouts must be positive")


@dataclass(slots=True)
class Budget:
    """What is left of one fetch's bytes and time; shared by its requests."""

    limits: FetchLimits
    clock: Callable[[], float] = time.monotonic
    bytes_used: int = 0
    requests: int = 0
    started: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def remaining_s(self) -> float:
        left = self.limits.deadline_s - (self.clock() - self.started)
        if left <= 0:
            raise ImageFetchTimeoutError(
                f"image fetch exceeded its {self.limits.deadline_s:g} s deadline"
            )
        return left

    def remaining_bytes(self) -> int:
        return self.limits.max_bytes - self.bytes_used

    def spend(self, n: int) -> None:
        self.bytes_used += n
        if self.bytes_used > self.limits.max_bytes:
            raise ImageTooLargeError(f"image data exceeds the {self.limits.max_bytes} byte limit")


def check_pixels(rows: int, columns: int, frames: int, max_pixels: int) -> None:
    """Decompression-bomb guard: refuse before decoding when the declared size is over the limit."""
    if rows <= 0 or columns <= 0 or frames <= 0:
        raise CorruptImageError("image declares no pixels or a negative size")
    total = rows * columns * frames
    if total > max_pixels:
        raise ImageTooLargeError(
            f"image declares {total} pixels ({rows}x{columns}x{frames}), "
            f"over the {max_pixels} limit"
        )
