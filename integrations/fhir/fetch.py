"""Guarded FHIR reads and searches for CDS Hooks prefetch (CDS Hooks 2.0 §Prefetch; FHIR search).

:class:`FhirFetcher` GETs ``{base}/{query}`` with a bearer token and follows a searchset's
``next`` links, one request after another, under a per-request timeout and an overall deadline
(a ``time.monotonic()`` instant the caller chooses). It never follows redirects, never leaves
``base`` when paging, reads at most ``max_response_bytes`` per response and at most
``max_pages`` pages per query. Every fetch is reported to an ``on_fetch`` callback as a
:class:`FetchEvent` (identifiers and outcome only: never the token, URL or body).

What to fetch, and what a failure means to the service (412 for a required key), is the
caller's policy (``cds_service.cdshooks.prefetch``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from integrations.errors import IntegrationError


@dataclass(frozen=True, slots=True)
class FetchEvent:
    """One FHIR fetch, for the audit trail: identifiers and outcome only."""

    key: str
    resource_type: str
    status: int | None
    ok: bool
    reason: str | None
    latency_ms: float
    pages: int


OnFetch = Callable[[FetchEvent], None]


class FhirFetchError(IntegrationError):
    """A prefetch query could not be had; ``reason`` names no URL, token or body."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


TRUNCATED_TAG: Final = {
    "system": "urn:oncocds:prefetch",
    "code": "truncated",
    "display": "paging stopped at the configured page cap",
}


def is_operation_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The ``next`` link of a Bundle (None for any other resource or the last page)."""
    if bundle.get("resourceType") != "Bundle":
        return None
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None


class FhirFetcher:
    """Reads FHIR queries for prefetch (thread-safe; one HTTP pool per app).

    Args:
        request_timeout_s: timeout of one HTTP request (capped by the deadline).
        max_response_bytes: a larger response fails the fetch.
        max_pages: pages of one search, the first included.
        transport: the HTTP transport (tests pass a fake at the network edge).
    """

    def __init__(
        self,
        *,
        request_timeout_s: float,
        max_response_bytes: int,
        max_pages: int,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._request_timeout_s = request_timeout_s
        self._max_response_bytes = max_response_bytes
        self._max_pages = max_pages
        self._client = httpx.Client(
            follow_redirects=False,
            transport=transport,
            trust_env=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    def close(self) -> None:
        self._client.close()

    def fetch(
        self,
        key: str,
        *,
        query: str,
        base: str,
        token: str,
        deadline: float,
        on_fetch: OnFetch,
    ) -> Any:
        """The resource or searchset (all pages merged) ``query`` names; None when a read finds
        nothing (404/410).

        Raises:
            FhirFetchError: the server failed, refused, timed out or answered no resource.
        """
        resource_type = re.split(r"[/?]", query, maxsplit=1)[0]
        is_read = "?" not in query and "/" in query
        started = time.monotonic()
        status: int | None = None
        pages = 0
        try:
            status, payload = self._get(f"{base}/{query}", token, deadline)
            pages = 1
            if status in (404, 410) and is_read:
                # A read that finds nothing is "no data" (2.0: "the search result may be null").
                on_fetch(
                    FetchEvent(key, resource_type, status, True, "not found", _ms(started), pages)
                )
                return None
            if status != 200:
                raise FhirFetchError(f"FHIR server answered HTTP {status}", status)  # noqa: TRY301
            if is_operation_outcome(payload):
                raise FhirFetchError("FHIR server returned an OperationOutcome", status)  # noqa: TRY301
            if not isinstance(payload, dict) or not isinstance(payload.get("resourceType"), str):
                raise FhirFetchError("FHIR server returned no FHIR resource", status)  # noqa: TRY301
            if next_link(payload) is not None:
                payload, extra = self._follow(payload, base, token, deadline)
                pages += extra
        except FhirFetchError as exc:
            on_fetch(
                FetchEvent(key, resource_type, exc.status, False, exc.reason, _ms(started), pages)
            )
            raise
        on_fetch(FetchEvent(key, resource_type, status, True, None, _ms(started), pages))
        return payload

    def page_on(
        self,
        key: str,
        *,
        bundle: dict[str, Any],
        base: str,
        token: str,
        deadline: float,
        on_fetch: OnFetch,
    ) -> dict[str, Any]:
        """``bundle`` (a first page the client sent) with its following pages appended; the
        first page alone when paging fails (it is data already, left partial)."""
        started = time.monotonic()
        try:
            merged, pages = self._follow(bundle, base, token, deadline)
        except FhirFetchError as exc:
            on_fetch(FetchEvent(key, "Bundle", exc.status, False, exc.reason, _ms(started), 0))
            return bundle
        on_fetch(FetchEvent(key, "Bundle", 200, True, None, _ms(started), pages))
        return merged

    # ---------------------------------------------------------------- HTTP

    def _get(self, url: str, token: str, deadline: float) -> tuple[int, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FhirFetchError("prefetch deadline exceeded")
        timeout = min(self._request_timeout_s, remaining)
        limit = self._max_response_bytes
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
        try:
            with self._client.stream("GET", url, headers=headers, timeout=timeout) as resp:
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body.extend(chunk)
                    if len(body) > limit:
                        raise FhirFetchError("FHIR response larger than the limit")
                    if time.monotonic() > deadline:
                        raise FhirFetchError("prefetch deadline exceeded")
                status = resp.status_code
        except httpx.TimeoutException as exc:
            raise FhirFetchError("FHIR server timed out") from exc
        except httpx.HTTPError as exc:
            raise FhirFetchError(f"FHIR server unreachable ({type(exc).__name__})") from exc
        try:
            payload = json.loads(bytes(body)) if body else None
        except ValueError:
            payload = None
        return status, payload

    def _follow(
        self, first: dict[str, Any], base: str, token: str, deadline: float
    ) -> tuple[dict[str, Any], int]:
        """Append the entries of the following pages; at most ``max_pages`` in all."""
        merged = dict(first)
        entries = list(first.get("entry") or [])
        pages = 0
        url = next_link(first)
        while url is not None and pages + 1 < self._max_pages:
            if not url.startswith(base + "/") and not url.startswith(base + "?"):
                raise FhirFetchError("next link leaves the FHIR server (refused)")
            status, page = self._get(url, token, deadline)
            if status != 200 or not isinstance(page, dict) or page.get("resourceType") != "Bundle":
                raise FhirFetchError(f"FHIR paging answered HTTP {status}", status)
            entries.extend(page.get("entry") or [])
            pages += 1
            url = next_link(page)
        merged["entry"] = entries
        # The merged Bundle is one page now; keep only non-paging links.
        links = [ln for ln in first.get("link") or [] if ln.get("relation") == "self"]
        if url is not None:
            # Cap reached: say so in the Bundle rather than pretend it is complete.
            merged["meta"] = {**(first.get("meta") or {}), "tag": [TRUNCATED_TAG]}
        if links:
            merged["link"] = links
        else:
            merged.pop("link", None)
        return merged, pages


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
