"""The application factory: ``create_app(settings)`` builds a complete, isolated service.

Features plug in through :class:`Extension`-style hooks kept here: routers in ``_ROUTERS`` and
readiness probes on ``app.state.readiness_probes``. Tests build apps with explicit settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from cds_service import __version__
from cds_service.analyses import endpoints as analyses_endpoints
from cds_service.api import health
from cds_service.api.errors import install_error_handlers
from cds_service.api.middleware import RequestContextMiddleware
from cds_service.audit import AuditTrail
from cds_service.cdshooks import endpoints as cdshooks_endpoints
from cds_service.cdshooks.environment import ServiceEnvironment
from cds_service.cdshooks.registry import ServiceRegistry, ServiceSpec
from cds_service.cdshooks.service import CdsHooksRuntime
from cds_service.cdshooks.services import BUILTIN_SERVICES
from cds_service.compliance import console as compliance_console
from cds_service.compliance import endpoints as compliance
from cds_service.db.engine import make_engine
from cds_service.db.session import make_sessionmaker
from cds_service.explanations import endpoints as explanations_endpoints
from cds_service.hl7 import endpoints as hl7_endpoints
from cds_service.imaging import endpoints as imaging_endpoints
from cds_service.jobs import endpoints as jobs_endpoints
from cds_service.jobs.executor import build_executor, install_notifier
from cds_service.jobs.registry import load_kinds
from cds_service.reports import endpoints as reports_endpoints
from cds_service.security.clients import load_trusted_clients
from cds_service.security.replay import ReplayStore
from cds_service.settings import Settings
from cds_service.writeback import endpoints as writeback_endpoints

ReadinessProbe = Callable[[], tuple[bool, dict[str, Any]]]

_ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    cdshooks_endpoints.router,
    cdshooks_endpoints.governance_router,
    analyses_endpoints.router,
    writeback_endpoints.router,
    reports_endpoints.router,
    hl7_endpoints.router,
    compliance.router,
    compliance_console.router,
    explanations_endpoints.router,
    explanations_endpoints.analysis_router,
    imaging_endpoints.router,
    jobs_endpoints.router,
)


def create_app(
    settings: Settings,
    *,
    extra_routers: tuple[APIRouter, ...] = (),
    cds_services: Iterable[ServiceSpec] | None = None,
) -> FastAPI:
    """Build the OncoCDS ASGI application.

    Args:
        settings: the complete configuration; nothing is read from the environment here.
        extra_routers: more routers (tests use this to add endpoints).
        cds_services: the CDS services to serve (service modules or definitions); default
            :data:`cds_service.cdshooks.services.BUILTIN_SERVICES`. Tests pass their own.

    Raises:
        InsecureSettingsError: production settings that must not be served.
        ClientsFileError: the trusted-clients file is invalid.
    """
    settings.check_secure()
    clients = load_trusted_clients(settings)
    registry = ServiceRegistry(BUILTIN_SERVICES if cds_services is None else cds_services)
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Background jobs (issue 17): the in-process executor unless a broker runs them.
        executor = build_executor(settings, app.state.sessionmaker)
        app.state.jobs = executor
        app.state.job_notifier.executor = executor
        if executor is not None:
            executor.start()
        try:
            yield
        finally:
            if executor is not None:
                app.state.job_notifier.executor = None
                await asyncio.to_thread(executor.stop)
            cds_hooks.close()
            runner = getattr(app.state, "writeback_runner", None)
            if runner is not None:  # created on first write-back (cds_service.writeback)
                runner.close()
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
    load_kinds(settings.jobs.extra_modules)
    # enqueue() on a request session wakes the executor after the commit (see cds_service.jobs).
    app.state.job_notifier = install_notifier(app.state.sessionmaker)
    app.state.jobs = None
    app.state.audit = AuditTrail(engine, source_observer=settings.instance_id)
    cds_hooks = CdsHooksRuntime(
        settings,
        registry=registry,
        clients=clients,
        replay_store=ReplayStore(engine),
        audit=app.state.audit,
        environment=ServiceEnvironment(
            settings=settings, session_factory=app.state.sessionmaker, audit=app.state.audit
        ),
    )
    app.state.cds_hooks = cds_hooks
    app.state.readiness_probes = {}
    imaging_endpoints.install_imaging(app, settings, offer_service=cds_services is None)
    install_error_handlers(app)
    for router in (*_ROUTERS, *extra_routers):
        app.include_router(router)
    if settings.cds_hooks.cors_origins:
        # CDS Hooks 2.0 §CORS: browser clients (the sandbox) need it; an explicit allowlist only.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cds_hooks.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
            expose_headers=["X-Request-Id"],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
