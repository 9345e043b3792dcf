"""Structured logging: one JSON object per line, with the request id of the current request.

Rules (CWE-532; CDS Hooks best practices): log identifiers (request id, route template, MSH-10,
hookInstance, iss/jti), never PHI, JWTs or access tokens. Call sites pass only identifiers in
``extra``; as a second line of defence :class:`RedactingFilter` masks anything shaped like a
bearer token or a JWT that still reaches a record, and exception messages are dropped from
tracebacks (only the exception type and frames are kept, since messages may quote input).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final

request_id_var: ContextVar[str | None] = ContextVar("oncocds_request_id", default=None)

# Attributes every LogRecord has; anything else came in through ``extra=`` and is emitted.
_STANDARD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

_JWT_RE: Final = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER_RE: Final = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_SECRET_KEY_RE: Final = re.compile(
    r"(?i)(\"?(?:access_token|id_token|refresh_token|client_assertion|authorization)\"?\s*[:=]\s*\"?)"
    r"[^\s\",}]+"
)
#: The password of a URL's userinfo (``amqp://user:PASSWORD@host``, a database URL).
_URL_PASSWORD_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+(@)")
REDACTED: Final = "[redacted]"


def redact(text: str) -> str:
    """Mask JWTs, bearer tokens, token-valued fields and URL passwords in free text."""
    text = _JWT_RE.sub(REDACTED, text)
    text = _URL_PASSWORD_RE.sub(lambda m: m.group(1) + REDACTED + m.group(2), text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    return _SECRET_KEY_RE.sub(lambda m: m.group(1) + REDACTED, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and extras so that no token survives formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _redact_value(value))
        return True


def _format_exception_without_message(
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None],
) -> str:
    exc_type, _, tb = exc_info
    frames = "".join(traceback.format_tb(tb)) if tb else ""
    return f"{frames}{exc_type.__module__}.{exc_type.__qualname__} (message withheld)"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            payload["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            payload["exc"] = _format_exception_without_message(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """Human-readable single lines for a developer's terminal."""

    def format(self, record: logging.LogRecord) -> str:
        extras = {
            k: v
            for k, v in vars(record).items()
            if k not in _STANDARD_ATTRS and not k.startswith("_")
        }
        request_id = request_id_var.get()
        head = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        rid = f" [{request_id}]" if request_id else ""
        line = f"{head}{rid} {tail}".rstrip()
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + _format_exception_without_message(record.exc_info)
        return line


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Install the OncoCDS handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_oncocds", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._oncocds = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's access log prints raw paths and query strings (which may carry identifiers);
    # OncoCDS logs its own access line with the route template instead.
    logging.getLogger("uvicorn.access").disabled = True
    # HTTP client libraries log full request URLs (FHIR queries carry patient identifiers and
    # search values) at INFO; keep them to warnings.
    for name in ("httpx", "httpx2", "httpcore", "hpack"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
