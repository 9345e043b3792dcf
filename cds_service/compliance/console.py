"""The review console at ``/compliance``: a server-rendered page plus a small vanilla script.

The page itself holds no audit data (it is the same for everyone, so it needs no token); the
script signs in with a pasted bearer token, or, when the provider's authorization and token
endpoints and a client id are configured, by an OpenID Connect redirect (authorization code
with PKCE, RFC 7636: a public client, no secret in the browser). The token is kept in
``sessionStorage`` and sent as an ``Authorization`` header by ``fetch`` to the audited
``/api/v1/audit`` endpoints.
No CDN, no framework: templates and assets ship inside the package.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from cds_service.compliance.devtoken import dev_issuer
from cds_service.errors import NotFoundError
from cds_service.settings import Settings

router = APIRouter(tags=["compliance console"], include_in_schema=True)

_STATIC: Final = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
#: The console loads nothing from elsewhere (no CDN) and runs only its own script.
_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

EVENT_TYPES: Final = (
    "cds-hooks.call",
    "fhir.read",
    "fhir.write",
    "hl7.received",
    "report.view",
    "feedback",
    "auth.rejected",
    "audit.query",
    "audit.read",
    "audit.export",
    "audit.verify",
    "audit.disclosures",
    "audit.archive",
)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("cds_service.compliance", "templates"),
        autoescape=select_autoescape(["html"]),
    )


def _static(name: str) -> bytes:
    return resources.files("cds_service.compliance").joinpath("static", name).read_bytes()


@router.get("/compliance", response_class=HTMLResponse, summary="Audit review console")
def console(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    cfg = settings.compliance
    issuer = cfg.oidc_issuer or (None if settings.is_production else dev_issuer(settings))
    oidc = None
    connect_src = "'self'"
    if cfg.authorization_endpoint and cfg.token_endpoint and cfg.client_id:
        oidc = {
            "authorization_endpoint": cfg.authorization_endpoint,
            "token_endpoint": cfg.token_endpoint,
            "client_id": cfg.client_id,
            "scope": cfg.scope,
        }
        # The browser posts the authorization code to the provider's token endpoint.
        token_url = urlsplit(cfg.token_endpoint)
        connect_src += f" {token_url.scheme}://{token_url.netloc}"
    html = (
        _environment()
        .get_template("console.html")
        .render(
            issuer=issuer,
            oidc=oidc,
            development=not settings.is_production,
            event_types=EVENT_TYPES,
            retention_years=settings.audit.retention_years,
        )
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": _CSP.replace(
                "connect-src 'self'", f"connect-src {connect_src}"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


@router.get("/compliance/static/{name}", summary="Console asset", include_in_schema=True)
def static(name: str) -> Response:
    if name not in _STATIC:
        raise NotFoundError("no such console asset")
    return Response(
        _static(name),
        media_type=_STATIC[name],
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )
