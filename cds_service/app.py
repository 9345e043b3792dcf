"""The application factory: ``create_app(settings)`` builds a complete, isolated service.

Features plug in through :class:`Extension`-style hooks kept here: routers in ``_ROUTERS`` and
readiness probes on ``app.state.readiness_probes``. Tests build apps with explicit settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from cds_service import __version__
from cds_service.api import health
from cds_service.api.errors import install_error_handlers
from cds_service.api.middleware import RequestContextMiddleware
from cds_service.audit import AuditTrail
from cds_service.compliance import console as compliance_console
from cds_service.compliance import endpoints as compliance
from cds_service.db.engine import make_engine
from cds_service.db.session import make_sessionmaker
from cds_service.settings import Settings

ReadinessProbe = Callable[[], tuple[bool, dict[str, Any]]]

_ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    compliance.router,
    compliance_console.router,
)


def create_app(settings: Settings, *, extra_routers: tuple[APIRouter, ...] = ()) -> FastAPI:
    """Build the OncoCDS ASGI application.

    Args:
        settings: the complete configuration; nothing is read from the environment here.
        extra_routers: more routers (tests use this to add endpoints).

    Raises:
        InsecureSettingsError: production settings that must not be served.
    """
    settings.check_secure()
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="OncoCDS",
        version=__version__,
        summary="CDS Hooks 2.0 decision support for precision oncology",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.audit = AuditTrail(engine, source_observer=settings.instance_id)
    app.state.readiness_probes = {}
    install_error_handlers(app)
    for router in (*_ROUTERS, *extra_routers):
        app.include_router(router)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
