"""Test peers at the network edge: a SMART Backend Services token endpoint and a FHIR endpoint.

These are real HTTP servers (Starlette apps run by uvicorn on a free port in a thread), standing
in for the EHR's authorisation server and FHIR server, which cannot run here. The token endpoint
validates client assertions the way a conforming SMART server must (SMART App Launch, Backend
Services; RFC 7523 §3) with joserfc: ``alg`` in {ES384, RS384}, ``kid`` known, signature, ``iss``
= ``sub`` = client id, ``aud`` = its own URL, ``exp`` present and at most 300 s ahead, ``jti``
present and never replayed. It records every assertion it saw, decoded, so tests can check the
properties of what the client actually sent. The FHIR endpoint answers a scripted sequence of
statuses (or stalls to force a client timeout) and, on success, a transaction-response Bundle.
The end-to-end test against a real FHIR server (medplum) is
``test_writeback_fhir_server.py``.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import extract_compact
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1:<free port>; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    else:  # pragma: no cover - the server did not come up
        raise RuntimeError("test peer did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _oauth_error(code: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": code}, status_code=status)


@dataclass
class TokenEndpoint:
    """A validating SMART Backend Services token endpoint (``POST /token``)."""

    client_id: str
    public_keys: dict[str, ECKey | RSAKey]
    expires_in: int | None = 300
    #: Statuses to answer (in order) before behaving normally, e.g. ``[503]``.
    fail_with: list[int] = field(default_factory=list)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    issued_tokens: set[str] = field(default_factory=set)
    _seen_jti: set[str] = field(default_factory=set)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/token", self._token, methods=["POST"])])

    def _reject(self, reason: str) -> JSONResponse:
        self.rejections.append(reason)
        return _oauth_error("invalid_client", 401)

    async def _token(self, request: Request) -> Response:  # noqa: PLR0911 - one return per rule
        if self.fail_with:
            return Response("unavailable", status_code=self.fail_with.pop(0))
        # application/x-www-form-urlencoded, parsed by hand (no python-multipart needed).
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return _oauth_error("unsupported_grant_type")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return self._reject("client_assertion_type")
        if not form.get("scope"):
            return _oauth_error("invalid_scope")
        assertion = str(form.get("client_assertion") or "")
        try:
            header = extract_compact(assertion.encode()).protected
        except (JoseError, ValueError):
            return self._reject("malformed assertion")
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in {"ES384", "RS384"}:
            return self._reject(f"alg {alg} not allowed")
        key = self.public_keys.get(str(kid)) if kid else None
        if key is None:
            return self._reject("unknown or missing kid")
        try:
            token = jwt.decode(assertion, key, algorithms=[str(alg)])
        except (JoseError, ValueError):
            return self._reject("bad signature")
        claims = token.claims
        self.assertions.append({"header": dict(token.header), "claims": dict(claims)})
        own_url = str(request.url).split("?", 1)[0]
        registry = jwt.JWTClaimsRegistry(
            leeway=0,
            iss={"essential": True, "value": self.client_id},
            sub={"essential": True, "value": self.client_id},
            aud={"essential": True, "value": own_url},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            return self._reject(f"claims: {type(exc).__name__}")
        if int(claims["exp"]) - time.time() > 300:
            return self._reject("exp more than 300 s ahead")
        if claims["jti"] in self._seen_jti:
            return self._reject("jti replayed")
        self._seen_jti.add(str(claims["jti"]))
        access = secrets.token_urlsafe(24)
        self.issued_tokens.add(access)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "scope": form["scope"],
        }
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return JSONResponse(body)


@dataclass
class FhirEndpoint:
    """``POST /fhir``: a FHIR server's transaction endpoint with a scripted failure sequence."""

    tokens: TokenEndpoint
    #: Per request, in order: an HTTP status, or ``"stall"`` (sleep ``stall_seconds``, then 503).
    script: list[int | str] = field(default_factory=list)
    stall_seconds: float = 3.0
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/fhir", self._transaction, methods=["POST"])])

    async def _transaction(self, request: Request) -> Response:
        self.requests += 1
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens.issued_tokens:
            return Response(status_code=401)
        step = self.script.pop(0) if self.script else 200
        if step == "stall":
            await asyncio.sleep(self.stall_seconds)
            return Response(status_code=503)
        if step != 200:
            return JSONResponse(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "transient"}],
                },
                status_code=int(step),
            )
        bundle = await request.json()
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            return Response(status_code=400)
        self.received.append(bundle)
        entries = [
            {
                "response": {
                    "status": "201 Created",
                    "location": f"{e['resource']['resourceType']}/{n}/_history/1",
                }
            }
            for n, e in enumerate(bundle["entry"], start=1)
        ]
        return JSONResponse(
            {"resourceType": "Bundle", "type": "transaction-response", "entry": entries},
            media_type="application/fhir+json",
        )
