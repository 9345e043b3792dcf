"""Prefetch templates and their resolution (CDS Hooks 2.0 §Prefetch Template, §Prefetch tokens).

A key's state in the request decides what happens:

* absent: not satisfied; fetch ``{fhirServer}/{rendered template}`` with the client's bearer token;
* ``null``: the client knows there is no data; nothing is fetched;
* an OperationOutcome: the client's fetch failed; it is an error, never data (fetched again when
  possible);
* anything else (a resource or a searchset Bundle): data; a Bundle with a ``next`` link is paged
  on the FHIR server when a token was given.

Fetches run one after another under a per-request timeout and an overall deadline, follow at most
``prefetch_max_pages`` pages, never follow redirects, and only go to URLs under ``fhirServer``.
When a key the service REQUIRES cannot be had the call fails with 412 (SHALL, §Prefetch Template).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import httpx

from cds_service.cdshooks.schemas import PREFETCH_TOKEN_FIELDS
from cds_service.errors import PreconditionFailedError
from cds_service.settings import CdsHooksSettings

if TYPE_CHECKING:
    from cds_service.cdshooks.registry import CdsServiceDefinition

TOKEN: Final = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
USER_TOKENS: Final = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
_CONTEXT_TOKEN: Final = re.compile(r"^context\.([A-Za-z][A-Za-z0-9]*)$")


def check_template(template: str, hook: str) -> str | None:  # noqa: PLR0911 - one reason each
    """Why ``template`` is not a valid prefetch template for ``hook`` (None when it is)."""
    if not template or len(template) > 2000:
        return "empty or too long"
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:", template) or template.startswith("/"):
        return "must be a relative FHIR query (no scheme, no leading /)"
    if ".." in template.split("?", 1)[0] or "#" in template:
        return "must not contain '..' or a fragment"
    if not re.match(r"^[A-Z][A-Za-z]+", template):
        return "must start with a resource type"
    allowed = PREFETCH_TOKEN_FIELDS.get(hook)
    for token in TOKEN.findall(template):
        if token in USER_TOKENS:
            continue
        match = _CONTEXT_TOKEN.match(token)
        if match is None:
            return f"unsupported token {{{{{token}}}}}"
        if allowed is not None and match.group(1) not in allowed:
            return f"context.{match.group(1)} is not a prefetch token of {hook}"
    if "{{" in TOKEN.sub("", template) or "}}" in TOKEN.sub("", template):
        return "unbalanced token braces"
    return None


def _token_value(token: str, context: Mapping[str, Any]) -> str | None:  # noqa: PLR0911
    if token in USER_TOKENS:
        user = context.get("userId")
        if not isinstance(user, str) or "/" not in user:
            return None
        kind, _, ident = user.partition("/")
        return ident if kind == USER_TOKENS[token] else None
    match = _CONTEXT_TOKEN.match(token)
    if match is None:
        return None
    value = context.get(match.group(1))
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)  # order-dispatch dispatchedOrders: a token list
    return None


def render_template(template: str, context: Mapping[str, Any]) -> str | None:
    """The query with tokens replaced (URL-encoded), or None when a token has no value."""
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        value = _token_value(match.group(1), context)
        if value is None:
            missing = True
            return ""
        # Encoding stops a context value from adding parameters or path segments.
        return quote(value, safe=",")

    rendered = TOKEN.sub(substitute, template)
    return None if missing else rendered


def is_operation_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


@dataclass(slots=True)
class ResolvedPrefetch:
    data: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)


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


class _FetchFailedError(Exception):
    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class PrefetchResolver:
    """Resolves a service's prefetch for one call (thread-safe; one HTTP pool per app)."""

    def __init__(
        self, settings: CdsHooksSettings, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._client = httpx.Client(
            follow_redirects=False,
            transport=transport,
            trust_env=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    def close(self) -> None:
        self._client.close()

    def resolve(
        self,
        definition: CdsServiceDefinition,
        *,
        context: Mapping[str, Any],
        prefetch: Mapping[str, Any] | None,
        fhir_server: str | None,
        access_token: str | None,
        on_fetch: Callable[[FetchEvent], None],
    ) -> ResolvedPrefetch:
        """Resolve every declared key.

        Raises:
            PreconditionFailedError: a required key could not be obtained (412).
        """
        result = ResolvedPrefetch()
        sent = prefetch or {}
        deadline = time.monotonic() + self._settings.prefetch_deadline_s
        base = fhir_server.rstrip("/") if fhir_server else None
        can_fetch = base is not None and access_token is not None
        for key, template in definition.prefetch.items():
            if key in sent:
                value = sent[key]
                if value is None:
                    result.data[key] = None  # "MUST send null when there is no data"
                    continue
                if is_operation_outcome(value):
                    result.errors[key] = "the client's prefetch failed (OperationOutcome)"
                elif isinstance(value, dict) and isinstance(value.get("resourceType"), str):
                    if can_fetch and _next_link(value) is not None:
                        assert base is not None
                        assert access_token is not None
                        value = self._page_on(
                            key,
                            bundle=value,
                            base=base,
                            token=access_token,
                            deadline=deadline,
                            on_fetch=on_fetch,
                        )
                    result.data[key] = value
                    continue
                else:
                    result.errors[key] = "prefetch value is not a FHIR resource"
            if not can_fetch:
                result.errors.setdefault(key, "not prefetched and no FHIR server access")
                continue
            query = render_template(template, context)
            if query is None:
                result.errors[key] = "a prefetch token has no value in the context"
                continue
            assert base is not None
            assert access_token is not None
            try:
                result.data[key] = self._fetch(
                    key,
                    query=query,
                    base=base,
                    token=access_token,
                    deadline=deadline,
                    on_fetch=on_fetch,
                )
                result.fetched.append(key)
                result.errors.pop(key, None)
            except _FetchFailedError as exc:
                result.errors[key] = exc.reason
        missing = sorted(k for k in definition.required_keys if k not in result.data)
        if missing:
            reasons = "; ".join(f"{k}: {result.errors.get(k, 'unavailable')}" for k in missing)
            raise PreconditionFailedError(f"required prefetch data unobtainable ({reasons})")
        return result

    # ---------------------------------------------------------------- HTTP

    def _get(self, url: str, token: str, deadline: float) -> tuple[int, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _FetchFailedError("prefetch deadline exceeded")
        timeout = min(self._settings.prefetch_request_timeout_s, remaining)
        limit = self._settings.prefetch_max_response_bytes
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
        try:
            with self._client.stream("GET", url, headers=headers, timeout=timeout) as resp:
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body.extend(chunk)
                    if len(body) > limit:
                        raise _FetchFailedError("FHIR response larger than the limit")
                    if time.monotonic() > deadline:
                        raise _FetchFailedError("prefetch deadline exceeded")
                status = resp.status_code
        except httpx.TimeoutException as exc:
            raise _FetchFailedError("FHIR server timed out") from exc
        except httpx.HTTPError as exc:
            raise _FetchFailedError(f"FHIR server unreachable ({type(exc).__name__})") from exc
        try:
            payload = json.loads(bytes(body)) if body else None
        except ValueError:
            payload = None
        return status, payload

    def _fetch(
        self,
        key: str,
        *,
        query: str,
        base: str,
        token: str,
        deadline: float,
        on_fetch: Callable[[FetchEvent], None],
    ) -> Any:
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
                raise _FetchFailedError(f"FHIR server answered HTTP {status}", status)  # noqa: TRY301
            if is_operation_outcome(payload):
                raise _FetchFailedError("FHIR server returned an OperationOutcome", status)  # noqa: TRY301
            if not isinstance(payload, dict) or not isinstance(payload.get("resourceType"), str):
                raise _FetchFailedError("FHIR server returned no FHIR resource", status)  # noqa: TRY301
            if _next_link(payload) is not None:
                payload, extra = self._follow(payload, base, token, deadline)
                pages += extra
        except _FetchFailedError as exc:
            on_fetch(
                FetchEvent(key, resource_type, exc.status, False, exc.reason, _ms(started), pages)
            )
            raise
        on_fetch(FetchEvent(key, resource_type, status, True, None, _ms(started), pages))
        return payload

    def _page_on(
        self,
        key: str,
        *,
        bundle: dict[str, Any],
        base: str,
        token: str,
        deadline: float,
        on_fetch: Callable[[FetchEvent], None],
    ) -> dict[str, Any]:
        started = time.monotonic()
        try:
            merged, pages = self._follow(bundle, base, token, deadline)
        except _FetchFailedError as exc:
            # The first page is data already; a failed continuation leaves it partial.
            on_fetch(FetchEvent(key, "Bundle", exc.status, False, exc.reason, _ms(started), 0))
            return bundle
        on_fetch(FetchEvent(key, "Bundle", 200, True, None, _ms(started), pages))
        return merged

    def _follow(
        self, first: dict[str, Any], base: str, token: str, deadline: float
    ) -> tuple[dict[str, Any], int]:
        """Append the entries of the following pages; at most ``prefetch_max_pages`` in all."""
        merged = dict(first)
        entries = list(first.get("entry") or [])
        pages = 0
        url = _next_link(first)
        while url is not None and pages + 1 < self._settings.prefetch_max_pages:
            if not url.startswith(base + "/") and not url.startswith(base + "?"):
                raise _FetchFailedError("next link leaves the FHIR server (refused)")
            status, page = self._get(url, token, deadline)
            if status != 200 or not isinstance(page, dict) or page.get("resourceType") != "Bundle":
                raise _FetchFailedError(f"FHIR paging answered HTTP {status}", status)
            entries.extend(page.get("entry") or [])
            pages += 1
            url = _next_link(page)
        merged["entry"] = entries
        # The merged Bundle is one page now; keep only non-paging links.
        links = [ln for ln in first.get("link") or [] if ln.get("relation") == "self"]
        if url is not None:
            # Cap reached: say so in the Bundle rather than pretend it is complete.
            merged["meta"] = {**(first.get("meta") or {}), "tag": [_TRUNCATED_TAG]}
        if links:
            merged["link"] = links
        else:
            merged.pop("link", None)
        return merged, pages


_TRUNCATED_TAG: Final = {
    "system": "urn:oncocds:prefetch",
    "code": "truncated",
    "display": "paging stopped at the configured page cap",
}


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    if bundle.get("resourceType") != "Bundle":
        return None
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
