"""Every error leaves the service as a FHIR OperationOutcome; never a stack trace.

Errors no handler knows are caught by :class:`cds_service.api.middleware.RequestContextMiddleware`
(inside Starlette's ServerErrorMiddleware, so they never reach the server's own traceback log).

CDS Hooks authentication failures are the exception: a bare 401 with no body (CDS Hooks
best practices, "respond with a 401 … with no further detail").
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from cds_service.errors import AuthenticationError, OncoCDSError
from integrations.fhir.outcome import operation_outcome

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"

_HTTP_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "incomplete",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
}


def outcome_response(
    status: int, diagnostics: str, *, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = operation_outcome(
        diagnostics,
        code=code or _HTTP_ISSUE_CODES.get(status, "exception"),
        severity="error" if status < 500 else "fatal",
    )
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def _validation_diagnostics(exc: RequestValidationError) -> tuple[str, list[str]]:
    locations: list[str] = []
    messages: list[str] = []
    for error in exc.errors()[:20]:
        loc = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        locations.append(loc or "body")
        # The message only, never the offending input value (it may be PHI).
        messages.append(f"{loc or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(messages) or "malformed request", locations


async def _oncocds_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OncoCDSError)
    if isinstance(exc, AuthenticationError):
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return outcome_response(exc.status_code, exc.message, code=exc.code)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    diagnostics, locations = _validation_diagnostics(exc)
    body: dict[str, Any] = operation_outcome(diagnostics, code="invalid", expression=locations)
    return JSONResponse(body, status_code=400, media_type=FHIR_JSON)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 401:
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    return outcome_response(
        exc.status_code, detail, headers=dict(exc.headers) if exc.headers else None
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OncoCDSError, _oncocds_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
