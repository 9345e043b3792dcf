"""A real FHIR R4 server for tests: ``@medplum/fhir-router`` 4.5.2 on Node 20 (see fhir_server/).

The npm packages are installed with ``npm ci`` from the committed lockfile into
``.cache/fhir_server/`` under the project (git-ignored), re-installed when the lockfile changes.
The server binds 127.0.0.1 on a port the OS picks and prints ``LISTENING <port>``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent / "fhir_server"
PROJECT = HERE.parents[2]
CACHE = PROJECT / ".cache" / "fhir_server"
NODE = shutil.which("node") or "/usr/bin/node"
NPM = shutil.which("npm") or "/usr/bin/npm"


def _install() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    lock = (HERE / "package-lock.json").read_bytes()
    stamp = CACHE / ".lock-sha256"
    digest = hashlib.sha256(lock + (HERE / "package.json").read_bytes()).hexdigest()
    for name in ("package.json", "package-lock.json", "server.js"):
        shutil.copyfile(HERE / name, CACHE / name)
    if not (stamp.is_file() and stamp.read_text() == digest and (CACHE / "node_modules").is_dir()):
        result = subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CACHE,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci for the test FHIR server failed: {result.stderr[-2000:]}")
        stamp.write_text(digest)
    return CACHE


@dataclass
class FhirServer:
    """Handle on the running server and its control API."""

    root: str
    process: subprocess.Popen[str]

    @property
    def base_url(self) -> str:
        return f"{self.root}/fhir/R4"

    def reset(self) -> None:
        httpx.delete(f"{self.root}/_control").raise_for_status()

    def configure(self, **config: Any) -> None:
        httpx.put(f"{self.root}/_control/config", json=config).raise_for_status()

    def add_rule(self, **rule: Any) -> None:
        httpx.post(f"{self.root}/_control/rules", json=rule).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = httpx.get(f"{self.root}/_control/requests").json()
        return result

    def put(self, resource: dict[str, Any], *, token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"{self.base_url}/{resource['resourceType']}/{resource['id']}"
        response = httpx.put(url, json=resource, headers=headers)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def post(self, resource: dict[str, Any], *, token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            f"{self.base_url}/{resource['resourceType']}", json=resource, headers=headers
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="session")
def fhir_server_session() -> Iterator[FhirServer]:
    cwd = _install()
    log_path = cwd / "server.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [NODE, "server.js"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
        env={**os.environ, "NODE_ENV": "test"},
    )
    port_line: list[str] = []

    def read_first_line() -> None:
        assert process.stdout is not None
        port_line.append(process.stdout.readline())

    reader = threading.Thread(target=read_first_line, daemon=True)
    reader.start()
    reader.join(timeout=60)
    if not port_line or not port_line[0].startswith("LISTENING "):
        process.kill()
        process.wait()
        log_file.close()
        pytest.fail(f"test FHIR server did not start: {log_path.read_text()[-2000:]}")
    port = int(port_line[0].split()[1])
    server = FhirServer(root=f"http://127.0.0.1:{port}", process=process)
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log_file.close()


@pytest.fixture
def fhir_server(fhir_server_session: FhirServer) -> FhirServer:
    """The session's FHIR server, emptied and with default behaviour for this test."""
    fhir_server_session.reset()
    return fhir_server_session
