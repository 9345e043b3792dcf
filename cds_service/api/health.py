"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cds_service import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="Readiness: database reachable, components loaded")
def readyz(request: Request) -> JSONResponse:
    checks: dict[str, Any] = {}
    ready = True
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = {"status": "ok", "dialect": request.app.state.engine.dialect.name}
    except SQLAlchemyError as exc:
        ready = False
        checks["database"] = {"status": "unavailable", "error": type(exc).__name__}
    # Components added by later features register a callable returning (ok, details).
    for name, probe in request.app.state.readiness_probes.items():
        ok, details = probe()
        ready = ready and ok
        checks[name] = {"status": "ok" if ok else "unavailable", **details}
    return JSONResponse(
        {"status": "ready" if ready else "not-ready", "checks": checks},
        status_code=200 if ready else 503,
    )
