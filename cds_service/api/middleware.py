"""ASGI middleware: request id, access log, body size limit.

Written as plain ASGI (not BaseHTTPMiddleware) so the body limit applies while the body streams,
before anything parses it, and so streaming responses are not buffered.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service.logs import request_id_var
from integrations.fhir.outcome import operation_outcome

log = logging.getLogger("oncocds.access")
errlog = logging.getLogger("oncocds.errors")

REQUEST_ID_HEADER: Final = "x-request-id"
_SAFE_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class _BodyTooLargeError(HTTPException):
    """Raised from ``receive`` when the streamed body passes the limit.

    An HTTPException, because FastAPI turns any other error raised while it reads the body into
    a 400; the app's exception handler renders it as a 413 OperationOutcome.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


async def _send_json(send: Send, status: int, body: dict[str, Any], request_id: str) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/fhir+json"),
                (b"content-length", str(len(payload)).encode()),
                (REQUEST_ID_HEADER.encode(), request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestContextMiddleware:
    """Assigns the request id, enforces the body limit, and writes one access-log line.

    The access line holds the route *template* (``/cds-services/{service_id}``), never the raw
    path or query string, which may carry identifiers.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent_id = _header(scope, REQUEST_ID_HEADER.encode())
        request_id = sent_id if sent_id and _SAFE_REQUEST_ID.match(sent_id) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._too_large(send_wrapper, request_id)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise _BodyTooLargeError(self.max_body_bytes)
                return message

            try:
                await self.app(scope, limited_receive, send_wrapper)
            except _BodyTooLargeError:
                if not status_holder["started"]:
                    await self._too_large(send_wrapper, request_id)
            except Exception as exc:  # noqa: BLE001 - the last-resort handler of the app
                # Last line: log type and frames (not the message, it may quote input) and
                # answer with an OperationOutcome that carries only the request id.
                errlog.error(
                    "unhandled error",
                    exc_info=(type(exc), exc, exc.__traceback__),
                    extra={"error_type": type(exc).__name__},
                )
                if not status_holder["started"]:
                    body = operation_outcome(
                        f"internal error; quote request id {request_id} to the administrator",
                        code="exception",
                        severity="fatal",
                    )
                    await _send_json(send_wrapper, 500, body, request_id)
        finally:
            route = scope.get("route")
            log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "route": getattr(route, "path", None) or "(unmatched)",
                    "status": status_holder["status"],
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)

    async def _too_large(self, send: Send, request_id: str) -> None:
        body = operation_outcome(
            f"request body exceeds the limit of {self.max_body_bytes} bytes",
            code="too-costly",
        )
        await _send_json(send, 413, body, request_id)
