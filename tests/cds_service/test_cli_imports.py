"""Start-up of the ``oncocds`` command line: a command imports only what it needs.

Each case runs the command in a fresh interpreter and reads ``sys.modules`` after it: building
the parser (every command module) and running ``analyze`` on a text list or ``version`` must not
load the web, database, FHIR-model or HL7 libraries. Behaviour, not time: the time is measured
by ``python -m bench cli``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ONCOCDS = str(Path(sys.executable).parent / "oncocds")
#: Libraries only the service, the database commands, FHIR output or HL7 need.
HEAVY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fhir",
    "fhir_core",
    "jinja2",
    "hl7apy",
    "httpx",
    "joserfc",
    "cryptography",
    "pydantic_settings",
)
#: Every top-level command ``oncocds --help`` must list.
COMMANDS = (
    "serve",
    "db",
    "version",
    "audit",
    "kb",
    "analyze",
    "writeback",
    "dev-setup",
    "dev-token",
    "demo",
    "mllp",
    "hl7",
    "compliance",
    "train",
    "evaluate",
    "train-llm",
    "model",
    "jobs",
    "classify",
    "explain",
    "llm",
    "worker",
    "relay",
)

_PROBE = """
import contextlib, io, json, sys
from cds_service.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    code = main(sys.argv[1:])
loaded = sorted({name.split(".")[0] for name in sys.modules})
sys.__stdout__.write(json.dumps({"loaded": loaded, "stdout": out.getvalue()}))
"""


def _loaded_after(*argv: str) -> tuple[set[str], str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "ONCOCDS_ENVIRONMENT": "development"},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return set(data["loaded"]), str(data["stdout"])


@pytest.fixture
def five_variants(tmp_path: Path) -> Path:
    path = tmp_path / "five.txt"
    path.write_text("BRAF V600E\nKRAS G12D\nPIK3CA H1047R\nTP53 R175H\nEGFR L858R\n")
    return path


def test_analyze_of_a_text_list_loads_no_service_library(five_variants: Path) -> None:
    loaded, out = _loaded_after("analyze", str(five_variants), "--tumor-type", "COAD")
    assert "BRAF V600E" in out  # it did the work
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_version_loads_no_service_library() -> None:
    loaded, out = _loaded_after("version")
    assert out.startswith("oncocds ")
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_probe_sees_a_heavy_import_when_one_happens(five_variants: Path) -> None:
    """Control: FHIR output needs the FHIR models, and the probe reports them."""
    loaded, out = _loaded_after("analyze", str(five_variants), "--format", "fhir")
    assert json.loads(out)["resourceType"] == "Bundle"
    assert {"fhir", "sqlalchemy"} <= loaded


def test_help_lists_every_command_and_loads_no_service_library() -> None:
    loaded, _ = _loaded_after("--help")
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    result = subprocess.run([ONCOCDS, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    listed = result.stdout.split("{", 1)[1].split("}", 1)[0].split(",")
    assert sorted(listed) == sorted(COMMANDS)
    for command in COMMANDS:
        assert f"\n    {command} " in result.stdout, command  # with its help line


@pytest.mark.parametrize("command", ["dev-token", "compliance dev-token"])
def test_role_choices_are_checked_and_listed_without_loading_them_at_start(command: str) -> None:
    args = command.split()
    bad = subprocess.run(
        [ONCOCDS, *args, "--role", "nope"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert "invalid choice: 'nope'" in bad.stderr
    assert "'compliance'" in bad.stderr
    assert "'integration'" in bad.stderr
    shown = subprocess.run([ONCOCDS, *args, "--help"], capture_output=True, text=True, check=False)
    listed = " ".join(shown.stdout.split())
    assert "clinician, compliance, compliance-read, governance, integration, none" in listed
