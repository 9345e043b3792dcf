"""``oncocds demo`` end to end: a real ``oncocds serve`` process (as ``make run`` starts it, on
SQLite and PostgreSQL), the development client from ``oncocds dev-setup``, the demo command in
its own process. The flow and the presence of cards are checked, not card texts (those belong to
the clinical services); the service's audit trail shows the calls came in and were interpreted.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from cds_service.cli.demo_patient import PATIENT_ID, PATIENT_REF
from cds_service.cli.devsetup_cmd import DEV_ISS
from tests.cds_service.demo.conftest import ONCOCDS, Served, oncocds_env
from tests.support.processes import free_port

INDICATOR = re.compile(r"^\[(CRITICAL|WARNING|INFO)\] \S", re.MULTILINE)


def _sections(out: str) -> dict[str, str]:
    """The output per hook: the text after each ``<hook> (...)`` heading."""
    parts = re.split(r"^(patient-view|order-sign) \(.*$", out, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_demo_prints_the_cards_and_the_report_link(
    serve: Callable[..., Served], database_url: str
) -> None:
    served = serve(database_url)
    result = served.oncocds("demo", "--url", served.url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    sections = _sections(out)
    assert set(sections) == {"patient-view", "order-sign"}
    for hook, text in sections.items():
        assert INDICATOR.search(text), f"no card printed for {hook}"
    assert "**" not in out  # card markdown is shown as text
    assert "\x1b[" not in out  # no colour codes when stdout is not a terminal

    report_lines = [line for line in out.splitlines() if line.startswith("Genomic report: ")]
    assert len(report_lines) == 1
    link = report_lines[0].removeprefix("Genomic report: ")
    assert link.startswith(f"{served.url}/reports/")
    page = httpx.get(link, timeout=30)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]

    # The service audited both hook calls as the development client's, for the demo patient,
    # and stored the interpretation the report link opens.
    calls = [r for r in served.audit("cds-hooks.call") if r.agent_who == DEV_ISS]
    assert [r.patient_id for r in calls] == [PATIENT_ID, PATIENT_ID]
    assert {r.outcome for r in calls} == {0}
    analyses = served.audit("analysis.create")
    assert [r.patient_id for r in analyses] == [PATIENT_REF]
    analysis_id = analyses[0].entities[0]["id"]
    assert f"/reports/{analysis_id}?" in link


def test_demo_sends_what_discovery_asks_for(serve: Callable[..., Served], sqlite_url: str) -> None:
    """Every prefetch key the services declare is answered from the demo chart (none left for
    the service to fetch: the demo sends no fhirServer)."""
    served = serve(sqlite_url)
    result = served.oncocds("demo", "--url", served.url)
    assert result.returncode == 0, result.stderr
    prefetch_audits = served.audit("cds-hooks.prefetch")
    assert prefetch_audits == []  # nothing was fetched from a FHIR server
    refused = [r for r in served.audit("cds-hooks.call") if r.outcome != 0]
    assert refused == []


def test_demo_without_a_running_service_is_one_line(tmp_path: Path, sqlite_url: str) -> None:
    env = oncocds_env(tmp_path, sqlite_url, free_port())
    setup = subprocess.run(
        [ONCOCDS, "dev-setup"], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert setup.returncode == 0, setup.stderr
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [ONCOCDS, "demo", "--url", url],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"oncocds: error: no OncoCDS service answers at {url}")
    assert "make run" in lines[0]


def test_demo_without_dev_setup_is_one_line(tmp_path: Path, sqlite_url: str) -> None:
    env = oncocds_env(tmp_path, sqlite_url, free_port())
    result = subprocess.run(
        [ONCOCDS, "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("oncocds: error: no development client")
    assert "oncocds dev-setup" in lines[0]


def test_demo_refused_by_a_service_that_does_not_trust_it_is_one_line(
    serve: Callable[..., Served], sqlite_url: str, tmp_path: Path
) -> None:
    clients = tmp_path / "clients.json"
    clients.write_text(
        json.dumps({"clients": [{"iss": "https://ehr.example.org", "jwks": {"keys": []}}]})
    )
    served = serve(sqlite_url, ONCOCDS_CLIENTS_FILE=str(clients))
    result = served.oncocds("demo", "--url", served.url)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "refused the development client (HTTP 401)" in lines[0]
    assert served.audit("auth.rejected")  # the refusal is audited by the service
