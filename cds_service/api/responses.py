"""OpenAPI descriptions shared by the routers: responses and request bodies.

Errors are OperationOutcome JSON (:mod:`cds_service.api.errors`), except a refused client
JWT, which is a bare 401 (CDS Hooks 2.0 §Trusting CDS Clients; :mod:`cds_service.security.deps`).
A clinical client route lists its own successes and errors through :func:`client_responses`, so
one wording serves every route that answers alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

Responses = dict[int | str, dict[str, Any]]

CLIENT_JWT_REFUSED: Final = "Client JWT missing or invalid (no body)"
NO_SUCH_ANALYSIS: Final = "no such analysis"

#: Request body content schemas (``openapi_extra``): a JSON object, text, raw bytes.
OBJECT: Final = {"schema": {"type": "object"}}
TEXT: Final = {"schema": {"type": "string"}}
BINARY: Final = {"schema": {"type": "string", "format": "binary"}}


def client_responses(
    successes: Mapping[int, str], errors: Mapping[int, str] | None = None
) -> Responses:
    """The ``responses`` of a route for clinical API clients: its successes, the bare 401 of a
    refused client JWT, and its errors, each an OperationOutcome (``errors`` names what failed).
    """
    described: Responses = {code: {"description": text} for code, text in successes.items()}
    described[401] = {"description": CLIENT_JWT_REFUSED}
    for code, text in (errors or {}).items():
        described[code] = {"description": f"OperationOutcome: {text}"}
    return described


def request_body(content: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its body itself: a required body of these media
    types (e.g. ``{"text/csv": TEXT}``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {media: dict(schema) for media, schema in content.items()},
        }
    }
