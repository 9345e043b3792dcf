"""A real ``oncocds serve`` process on a free port, configured by its environment only, as
``make run`` starts it; and its audit trail read back from the database.

The process runs in its own directory (``var/`` for the generated development secrets) and its
own session, and is stopped after the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from cds_service.models.audit import AuditRecord
from tests.support.processes import free_port

ONCOCDS = str(Path(sys.executable).parent / "oncocds")


@dataclass
class Served:
    """A running ``oncocds serve`` and how to run further commands against it."""

    url: str
    env: dict[str, str]
    cwd: Path
    database_url: str

    def oncocds(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ONCOCDS, *args],
            env={**self.env, **env},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def audit(self, event_type: str) -> list[Any]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                stmt = (
                    select(AuditRecord)
                    .where(AuditRecord.event_type == event_type)
                    .order_by(AuditRecord.seq)
                )
                return list(conn.execute(stmt).all())
        finally:
            engine.dispose()


def oncocds_env(workdir: Path, database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONCOCDS_")}
    env.update(
        {
            "ONCOCDS_ENVIRONMENT": "development",
            "ONCOCDS_DATABASE_URL": database_url,
            "ONCOCDS_HOST": "127.0.0.1",
            "ONCOCDS_PORT": str(port),
            "ONCOCDS_LOG_LEVEL": "WARNING",
            "ONCOCDS_CDS_HOOKS__DEV_DIR": str(workdir / "var" / "dev-client"),
            "ONCOCDS_AUDIT__SIGNING_KEY_PATH": str(workdir / "var" / "audit-signing-key.pem"),
            "ONCOCDS_COMPLIANCE__DEV_KEY_PATH": str(workdir / "var" / "compliance-dev-oidc.json"),
            "ONCOCDS_AUDIT__CHECKPOINT_INTERVAL_SECONDS": "0",
            "ONCOCDS_WRITEBACK__SWEEP_INTERVAL_SECONDS": "0",
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``oncocds serve`` with ``database_url`` and extra ``ONCOCDS_*`` variables."""
    started: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(database_url: str, *, dev_setup: bool = True, **extra: str) -> Served:
        workdir = tmp_path / f"oncocds-{len(started)}"
        workdir.mkdir()
        port = free_port()
        served = Served(
            url=f"http://127.0.0.1:{port}",
            env=oncocds_env(workdir, database_url, port, **extra),
            cwd=workdir,
            database_url=database_url,
        )
        if dev_setup:
            # The development client exists whatever the server trusts (dev-setup writes none
            # when a clients file is configured, so it runs without that variable).
            setup = subprocess.run(
                [ONCOCDS, "dev-setup"],
                env={k: v for k, v in served.env.items() if k != "ONCOCDS_CLIENTS_FILE"},
                cwd=workdir,
                capture_output=True,
                text=True,
                check=False,
            )
            assert setup.returncode == 0, setup.stderr
        log = (workdir / "serve.log").open("wb")
        process = subprocess.Popen(
            [ONCOCDS, "serve"],
            env=served.env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append((process, log))
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                    return served
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"oncocds serve did not start: {(workdir / 'serve.log').read_text()}")
            time.sleep(0.2)

    yield start
    for process, log in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
