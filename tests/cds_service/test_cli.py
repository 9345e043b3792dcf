"""The ``oncocds`` command line: subcommands, environment configuration, one-line errors."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cds_service.audit import AuditTrail
from cds_service.cli import main
from cds_service.db.engine import make_engine

ONCOCDS = str(Path(sys.executable).parent / "oncocds")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ONCOCDS, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version() -> None:
    result = _run("version")
    assert result.returncode == 0
    assert result.stdout.startswith("oncocds ")


def test_db_upgrade_creates_sqlite_file_from_environment(tmp_path: Path) -> None:
    db_file = tmp_path / "nested" / "dir" / "o.db"
    result = _run("db", "upgrade", env={"ONCOCDS_DATABASE_URL": f"sqlite:///{db_file}"})
    assert result.returncode == 0, result.stderr
    assert db_file.is_file()
    check = _run("db", "check", env={"ONCOCDS_DATABASE_URL": f"sqlite:///{db_file}"})
    assert check.returncode == 0, check.stderr


def test_serve_refuses_insecure_production_in_one_line(tmp_path: Path) -> None:
    result = _run(
        "serve",
        env={"ONCOCDS_ENVIRONMENT": "production", "ONCOCDS_PUBLIC_BASE_URL": "http://x.example"},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("oncocds: error: refusing to start in production")
    assert "Traceback" not in result.stderr


def test_invalid_setting_is_one_line() -> None:
    result = _run("db", "check", env={"ONCOCDS_PORT": "not-a-port"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("oncocds: error: invalid settings: ONCOCDS_PORT")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_command_is_one_line() -> None:
    result = _run("frobnicate")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_audit_verify_exit_codes(database_url: str) -> None:
    engine = make_engine(database_url)
    trail = AuditTrail(engine, source_observer="cli-test")
    for _ in range(3):
        trail.record(action="R", event_type="t", agent_who="x")
    engine.dispose()
    ok = _run("audit", "verify", env={"ONCOCDS_DATABASE_URL": database_url})
    assert ok.returncode == 0, ok.stderr
    assert "3 records" in ok.stdout


@pytest.mark.slow
def test_serve_starts_the_requested_worker_processes(tmp_path: Path) -> None:
    """``--workers 2`` runs two uvicorn worker processes (it was once parsed and ignored)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        **os.environ,
        "ONCOCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "ONCOCDS_PORT": str(port),
        "ONCOCDS_LOG_LEVEL": "WARNING",
    }
    oncocds = str(Path(sys.executable).parent / "oncocds")
    subprocess.run([oncocds, "db", "upgrade"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [oncocds, "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
                # uvicorn's workers are multiprocessing spawns (not its resource tracker)
                workers = {
                    int(c)
                    for c in children
                    if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
                }
            time.sleep(0.2)
        assert len(workers) == 2
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the workers never answered /healthz")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_serve_refuses_zero_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--workers", "0"]) == 2
    assert capsys.readouterr().err.strip() == "oncocds: error: --workers must be at least 1"


def test_a_serving_process_loads_the_knowledge_base_and_freezes_it(tmp_path: Path) -> None:
    """The uvicorn factory of ``oncocds serve`` builds the app, loads the knowledge base and
    moves the long-lived objects out of the collector's way (``gc.freeze``, a young threshold of
    50,000). Run in a child process: freezing this test process would keep its garbage."""
    script = (
        "import gc, sys\n"
        "from cds_service.cli import serve_cmd\n"
        "from inference.genomics.kb import store\n"
        "assert not store._cache, 'the knowledge base was loaded before the factory ran'\n"
        "assert gc.get_freeze_count() == 0\n"
        "serve_cmd.build_app()\n"
        "print(bool(store._cache), gc.get_freeze_count() > 100_000, gc.get_threshold()[0],"
        " sys.getswitchinterval())\n"
    )
    env = {
        **os.environ,
        "ONCOCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "ONCOCDS_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True", "50000", "0.0005"]
