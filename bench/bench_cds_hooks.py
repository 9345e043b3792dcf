"""CDS Hooks call latency and throughput at 32 concurrent clients vs a bare FastAPI endpoint.

One uvicorn server (subprocess; one worker, BENCH_WORKERS=N for more) runs the OncoCDS app with a
trivial registered patient-view service (one card, no prefetch) *and* a bare ``POST /bench/bare``
endpoint returning ``{"cards": []}``, so both go through the same server, settings and
middleware in the same run.
Each hook call carries its own freshly signed ES384 JWT (signed before timing), so the figures
include JWT verification, the database jti replay insert, the audit records and card storage.
Database: PostgreSQL when ONCOCDS_TEST_DATABASE_URL is set, else SQLite.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

CONCURRENCY = 32
REQUESTS = 960
ROUNDS = 4
#: Calls made one at a time after each scenario (latency without queueing).
SINGLE = 100
#: uvicorn worker processes serving both the bare endpoint and the hooks (BENCH_WORKERS).
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))
WARMUP = 64
ISS = "https://bench-ehr.example.org"
SERVICE = "bench-trivial"


def build_app() -> Any:
    """uvicorn factory (runs in the server process; configured by BENCH_* variables)."""
    from fastapi import APIRouter

    from cds_service.cdshooks.registry import CdsServiceDefinition, ResolvedRequest
    from cds_service.cdshooks.schemas import CdsResponse
    from cds_service.cli.serve_cmd import serving_app
    from cds_service.settings import Settings

    def handle(request: ResolvedRequest) -> CdsResponse:
        return CdsResponse.model_validate(
            {
                "cards": [
                    {
                        "summary": f"Benchmark card for {request.patient_id}",
                        "indicator": "info",
                        "source": {"label": "bench"},
                    }
                ]
            }
        )

    bare = APIRouter()

    @bare.post("/bench/bare")
    def bare_endpoint(body: dict[str, Any]) -> dict[str, Any]:
        return {"cards": []}

    definition = CdsServiceDefinition(
        id=SERVICE, hook="patient-view", description="benchmark", handler=handle
    )
    # As `oncocds serve` runs it.
    return serving_app(Settings(), extra_routers=(bare,), cds_services=[definition])


def _tokens(key: Any, url: str, count: int) -> list[dict[str, str]]:
    """Fresh client JWTs (each jti is accepted once), signed before the clock starts."""
    from cds_service.security.signing import sign_client_jwt

    return [
        {"Authorization": f"Bearer {sign_client_jwt(key, iss=ISS, aud=url)}"} for _ in range(count)
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _body() -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/bench", "patientId": "p-bench"},
    }


async def _drive(
    url: str,
    headers_list: list[dict[str, str]],
    body: Callable[[], dict[str, Any]] = _body,
    concurrency: int = CONCURRENCY,
) -> tuple[list[float], float]:
    latencies: list[float] = []
    errors: dict[int, int] = {}
    # Bodies are encoded before the clock starts: the client shares the machine's two cores
    # with the server, and JSON-encoding a 90 KB prefetch per call was client time.
    queue: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
    for headers in headers_list:
        queue.put_nowait(
            ({**headers, "Content-Type": "application/json"}, json.dumps(body()).encode())
        )
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                headers, content = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(url, content=content, headers=headers)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    # Counted, not fatal: an overloaded SQLite answers 503 ("database is
                    # locked") and the figure worth printing is how often.
                    errors[response.status_code] = errors.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if errors:
        print(f"    {url}: non-200 answers {errors}")
    return latencies, elapsed


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _report(label: str, latencies: list[float], elapsed: float) -> dict[str, float]:
    if not latencies:
        print(f"{label:>10}: no successful requests")
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "rps": 0.0}
    figures = {
        "p50": _pct(latencies, 0.50),
        "p95": _pct(latencies, 0.95),
        "p99": _pct(latencies, 0.99),
        "mean": statistics.fmean(latencies) * 1000,
        "rps": len(latencies) / elapsed,
    }
    print(
        f"{label:>10}: p50 {figures['p50']:7.2f} ms  p95 {figures['p95']:7.2f} ms  "
        f"p99 {figures['p99']:7.2f} ms  throughput {figures['rps']:7.1f} req/s "
        f"({len(latencies)} requests in {ROUNDS} interleaved rounds, {CONCURRENCY} concurrent)"
    )
    return figures


def _run(
    database_url: str,
    label: str,
    tmp: Path,
    *,
    app_factory: str = "bench.bench_cds_hooks:build_app",
    service: str = SERVICE,
    body: Callable[[], dict[str, Any]] = _body,
    scenarios: tuple[tuple[str, Callable[[], dict[str, Any]]], ...] | None = None,
) -> None:
    """Bare endpoint first, then each scenario (label, body factory) against ``service``."""
    scenarios = scenarios or (("cds-hooks", body),)
    from cds_service.db import migrate
    from cds_service.security.signing import generate_signing_key, public_jwks

    migrate.upgrade(database_url, "head")
    key = generate_signing_key("ES384")
    clients = tmp / f"clients-{label}.json"
    clients.write_text(json.dumps({"clients": [{"iss": ISS, "jwks": public_jwks(key)}]}))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ONCOCDS_ENVIRONMENT": "development",
        "ONCOCDS_DATABASE_URL": database_url,
        "ONCOCDS_PUBLIC_BASE_URL": base,
        "ONCOCDS_CLIENTS_FILE": str(clients),
        "ONCOCDS_LOG_LEVEL": "WARNING",
        "ONCOCDS_DB_POOL_SIZE": "20",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app_factory,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            str(WORKERS),
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        url = f"{base}/cds-services/{service}"
        asyncio.run(_drive(f"{base}/bench/bare", [{}] * WARMUP, body))
        # Per scenario, interleaved rounds (bare, scenario, bare, ...): load from elsewhere on
        # the shared machine then falls on both figures alike, and one scenario's after-effects
        # (a heavy one leaves the database writing back) do not fall on another's bare figure.
        per_round = REQUESTS // ROUNDS
        print(f"-- {label}, {WORKERS} uvicorn worker(s)")
        for name, make_body in scenarios:
            asyncio.run(_drive(url, _tokens(key, url, WARMUP), make_body))
            bare_lat: list[float] = []
            bare_time = 0.0
            hook_lat: list[float] = []
            hook_time = 0.0
            for _round in range(ROUNDS):
                lat, elapsed = asyncio.run(_drive(f"{base}/bench/bare", [{}] * per_round, body))
                bare_lat += lat
                bare_time += elapsed
                lat, elapsed = asyncio.run(_drive(url, _tokens(key, url, per_round), make_body))
                hook_lat += lat
                hook_time += elapsed
            bare = _report("bare", bare_lat, bare_time)
            cds = _report(name, hook_lat, hook_time)
            print(
                f"{'ratio':>10}: p50 x{cds['p50'] / bare['p50']:.2f}  "
                f"p95 x{cds['p95'] / bare['p95']:.2f}  "
                f"p99 x{cds['p99'] / bare['p99']:.2f}  "
                f"throughput x{cds['rps'] / bare['rps']:.2f} ({name} / bare)"
            )
            # The same call with no queue in front of it: one client, one call at a time.
            lat, _elapsed = asyncio.run(
                _drive(url, _tokens(key, url, SINGLE), make_body, concurrency=1)
            )
            print(
                f"{'1 client':>10}: p50 {_pct(lat, 0.5):7.2f} ms  p95 {_pct(lat, 0.95):7.2f} ms  "
                f"p99 {_pct(lat, 0.99):7.2f} ms ({name}, {len(lat)} calls one at a time)"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    server_url = os.environ.get("ONCOCDS_TEST_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        if server_url:
            from cds_service.db.testing import temporary_postgres_database

            with temporary_postgres_database(server_url, prefix="oncocds_bench") as url:
                _run(url, "postgresql", Path(tmp))
        _run(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", Path(tmp))


if __name__ == "__main__":
    main()
