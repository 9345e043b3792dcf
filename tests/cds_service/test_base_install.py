"""``make run`` on a base install: the service starts with only what ``make run`` installs.

``make run`` installs ``.[imaging]`` (the base dependencies and the imaging extra), while the
tests run in the full development environment (torch, monai, transformers, ollama, celery...).
A module that the API or the MLLP listener imports at start from an extra ``make run`` does not
install breaks ``make run`` on a fresh machine and passes every other test (it happened once:
httpx2 and numpy). Here the ``make run`` steps run in fresh interpreters that refuse to import
any distribution outside that install: its closure is computed from the installed metadata
(``importlib.metadata``), starting at ``pyproject.toml``'s base dependencies and imaging extra.

The servers run for real (uvicorn on a free TCP port, the MLLP listener on another) and are
asked over the network; nothing is faked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.processes import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]

#: Run before the command: a meta-path finder that refuses the top-level modules of every
#: installed distribution outside the allowed set (given as JSON in argv[1]).
_GUARD = """
import importlib.abc, importlib.metadata as md, json, re, sys
allowed = set(json.loads(sys.argv.pop(1)))
blocked = {}
for module, dists in md.packages_distributions().items():
    names = {re.sub(r'[-_.]+', '-', d).lower() for d in dists}
    if module not in sys.stdlib_module_names and not names & allowed:
        blocked[module] = sorted(names)
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition('.')[0]
        if top in blocked:
            raise ModuleNotFoundError(
                f"make run does not install {blocked[top]} (import of {name})", name=name)
        return None
sys.meta_path.insert(0, Refuse())
from cds_service.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _applies(requirement: Requirement, extras: tuple[str, ...]) -> bool:
    """Whether a dependency is installed here (this Python, this platform, these extras)."""
    marker = requirement.marker
    return marker is None or any(marker.evaluate({"extra": e}) for e in extras or ("",))


def _closure(requirements: list[str]) -> set[str]:
    """Every distribution the requirements pull in, by installed metadata."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    # Markers are evaluated where a requirement is read: a dependency of an extra
    # (``extra == "binary"`` under ``psycopg[binary]``) must not be judged again without it.
    pending = [r for r in map(Requirement, requirements) if _applies(r, ())]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = (name, tuple(sorted(requirement.extras)))
        if name == "oncocds" or key in seen:
            continue
        seen.add(key)
        try:
            requires = [Requirement(r) for r in metadata.requires(name) or []]
        except metadata.PackageNotFoundError:
            continue  # not installed in this environment, so nothing it pulls in is either
        pending += [sub for sub in requires if _applies(sub, key[1])]
    return {name for name, _ in seen}


def _make_run_install() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    makefile = (ROOT / "Makefile").read_text()
    installed = re.search(r"pip install --quiet -e '\.\[([a-z,]+)\]'", makefile)
    assert installed, "the Makefile's base install line (make run) has moved: update this test"
    requirements = list(project["dependencies"])
    for extra in installed.group(1).split(","):
        requirements += project["optional-dependencies"][extra]
    return _closure(requirements) | {"oncocds", "pip", "setuptools"}


def _oncocds(allowed: set[str], *argv: str) -> list[str]:
    return [sys.executable, "-c", _GUARD, json.dumps(sorted(allowed)), *argv]


@pytest.fixture(scope="module")
def allowed() -> set[str]:
    return _make_run_install()


def test_the_guard_refuses_what_make_run_does_not_install(
    allowed: set[str], tmp_path: Path
) -> None:
    """The guard itself refuses torch (the ``ml`` extra: ``make run`` does not install it)."""
    assert not {"torch", "monai", "transformers", "celery", "ollama"} & allowed
    assert {"fastapi", "numpy", "pydicom", "httpx2", "sqlalchemy"} <= allowed
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            _GUARD.replace(
                "from cds_service.cli import main\nsys.exit(main(sys.argv[1:]))", "import torch"
            ),
            json.dumps(sorted(allowed)),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert probe.returncode != 0
    assert "make run does not install ['torch'] (import of torch)" in probe.stderr


def test_make_run_steps_start_the_service_on_a_base_install(
    allowed: set[str], tmp_path: Path
) -> None:
    """``oncocds db upgrade``, ``dev-setup``, ``mllp`` and ``serve``, as ``make run`` runs them,
    with the embedded SQLite default, in an empty directory."""
    api_port, mllp_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ONCOCDS_") and key != "PYTHONPATH"
    }
    env |= {"ONCOCDS_PORT": str(api_port), "ONCOCDS_MLLP_PORT": str(mllp_port)}
    (tmp_path / "var").mkdir()

    def step(*argv: str) -> str:
        done = subprocess.run(
            _oncocds(allowed, *argv),
            check=False,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"oncocds {' '.join(argv)}: {done.stderr[-3000:]}"
        return done.stdout

    step("db", "upgrade")
    step("dev-setup")
    token = step("dev-token").strip()
    logs = {command: tmp_path / f"{command}.log" for command in ("mllp", "serve")}
    servers = []
    for command, log in logs.items():
        with log.open("wb") as sink:
            servers.append(
                subprocess.Popen(
                    _oncocds(allowed, command), env=env, cwd=tmp_path, stdout=sink, stderr=sink
                )
            )
    try:
        wait_for_port(mllp_port, servers[0], logs["mllp"], timeout=120)
        wait_for_port(api_port, servers[1], logs["serve"], timeout=120)
        base = f"http://127.0.0.1:{api_port}"
        assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
        ready = httpx.get(f"{base}/readyz", timeout=30)
        assert ready.status_code == 200, ready.text
        discovery = httpx.get(
            f"{base}/cds-services", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert discovery.status_code == 200, (discovery.status_code, discovery.text[:500])
        services = discovery.json()["services"]
        assert {"oncology-genomics", "targeted-therapy-check"} <= {s["id"] for s in services}
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
