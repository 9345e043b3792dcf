"""Prefetch templates and their resolution (CDS Hooks 2.0 §Prefetch Template, §Prefetch tokens).

A key's state in the request decides what happens:

* absent: not satisfied; fetch ``{fhirServer}/{rendered template}`` with the client's bearer token;
* ``null``: the client knows there is no data; nothing is fetched;
* an OperationOutcome: the client's fetch failed; it is an error, never data (fetched again when
  possible);
* anything else (a resource or a searchset Bundle): data; a Bundle with a ``next`` link is paged
  on the FHIR server when a token was given.

Fetches run one after another under a per-request timeout and an overall deadline, follow at most
``prefetch_max_pages`` pages, never follow redirects, and only go to URLs under ``fhirServer``
(:class:`integrations.fhir.fetch.FhirFetcher` does the HTTP). When a key the service REQUIRES
cannot be had the call fails with 412 (SHALL, §Prefetch Template).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import httpx

from cds_service.cdshooks.schemas import PREFETCH_TOKEN_FIELDS
from cds_service.errors import PreconditionFailedError
from cds_service.settings import CdsHooksSettings
from integrations.fhir.fetch import (
    FetchEvent,
    FhirFetcher,
    FhirFetchError,
    OnFetch,
    is_operation_outcome,
    next_link,
)

__all__ = [
    "FetchEvent",
    "PrefetchResolver",
    "ResolvedPrefetch",
    "check_template",
    "is_operation_outcome",
    "render_template",
]

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


@dataclass(slots=True)
class ResolvedPrefetch:
    data: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)


class PrefetchResolver:
    """Resolves a service's prefetch for one call (thread-safe; one HTTP pool per app)."""

    def __init__(
        self, settings: CdsHooksSettings, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._fetcher = FhirFetcher(
            request_timeout_s=settings.prefetch_request_timeout_s,
            max_response_bytes=settings.prefetch_max_response_bytes,
            max_pages=settings.prefetch_max_pages,
            transport=transport,
        )

    def close(self) -> None:
        self._fetcher.close()

    def resolve(
        self,
        templates: Mapping[str, str],
        *,
        required: frozenset[str],
        context: Mapping[str, Any],
        prefetch: Mapping[str, Any] | None,
        fhir_server: str | None,
        access_token: str | None,
        on_fetch: OnFetch,
    ) -> ResolvedPrefetch:
        """Resolve every declared key (``templates``: key → prefetch template).

        Raises:
            PreconditionFailedError: a key in ``required`` could not be obtained (412).
        """
        result = ResolvedPrefetch()
        sent = prefetch or {}
        deadline = time.monotonic() + self._settings.prefetch_deadline_s
        base = fhir_server.rstrip("/") if fhir_server else None
        can_fetch = base is not None and access_token is not None
        for key, template in templates.items():
            if key in sent:
                value = sent[key]
                if value is None:
                    result.data[key] = None  # "MUST send null when there is no data"
                    continue
                if is_operation_outcome(value):
                    result.errors[key] = "the client's prefetch failed (OperationOutcome)"
                elif isinstance(value, dict) and isinstance(value.get("resourceType"), str):
                    if can_fetch and next_link(value) is not None:
                        assert base is not None
                        assert access_token is not None
                        value = self._fetcher.page_on(
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
                result.data[key] = self._fetcher.fetch(
                    key,
                    query=query,
                    base=base,
                    token=access_token,
                    deadline=deadline,
                    on_fetch=on_fetch,
                )
                result.fetched.append(key)
                result.errors.pop(key, None)
            except FhirFetchError as exc:
                result.errors[key] = exc.reason
        missing = sorted(k for k in required if k not in result.data)
        if missing:
            reasons = "; ".join(f"{k}: {result.errors.get(k, 'unavailable')}" for k in missing)
            raise PreconditionFailedError(f"required prefetch data unobtainable ({reasons})")
        return result
