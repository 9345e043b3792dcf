"""Operator views of the jobs: ``/api/v1/jobs`` (list, one job, replay) and ``oncocds jobs``.
Staff tokens come from the development OIDC issuer (a real token, verified by the service)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds_service.app import create_app
from cds_service.jobs import enqueue
from cds_service.models.audit import AuditRecord
from cds_service.models.jobs import BackgroundJob
from cds_service.settings import Settings
from tests.cds_service.cdshooks.conftest import staff_headers

ONCOCDS = str(Path(sys.executable).parent / "oncocds")


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str, tmp_path: Path) -> Settings:
    # No executor: the rows stay as seeded while the views are looked at.
    return make_settings(
        database_url=database_url,
        compliance={"dev_key_path": tmp_path / "dev-oidc.json"},
        jobs={"in_process": False},
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def _seed(client: TestClient) -> dict[str, int]:
    factory = client.app.state.sessionmaker  # type: ignore[attr-defined]
    ids: dict[str, int] = {}
    with factory.begin() as session:
        for key, status in (("v:queued", "queued"), ("v:dead", "dead"), ("v:ok", "succeeded")):
            job = enqueue(session, kind="jobs.prune", key=key, payload={"study": "1.2.3"})
            job.status = status
            if status == "dead":
                job.last_error = "unsupported content type image/x-test"
            ids[key] = job.id
    return ids


def _events(client: TestClient) -> list[tuple[str, str | None]]:
    factory = client.app.state.sessionmaker  # type: ignore[attr-defined]
    with factory() as session:
        rows = session.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
        return [(r.event_type, r.agent_who) for r in rows if r.event_type.startswith("jobs.")]


def test_api_list_show_replay(client: TestClient, settings: Settings) -> None:
    ids = _seed(client)
    integration = staff_headers(settings, "integration")
    listing = client.get("/api/v1/jobs", params={"status": "dead"}, headers=integration)
    assert listing.status_code == 200, listing.text
    items = listing.json()["items"]
    assert [(i["id"], i["key"], i["lastError"]) for i in items] == [
        (ids["v:dead"], "v:dead", "unsupported content type image/x-test")
    ]
    assert "payload" not in items[0] or items[0]["payload"] is None

    one = client.get(f"/api/v1/jobs/{ids['v:dead']}", headers=integration).json()
    assert (one["kind"], one["status"], one["payload"]) == (
        "jobs.prune",
        "dead",
        {"study": "1.2.3"},
    )

    replayed = client.post(f"/api/v1/jobs/{ids['v:dead']}/replay", headers=integration)
    assert replayed.status_code == 200, replayed.text
    assert (replayed.json()["status"], replayed.json()["attempts"]) == ("queued", 0)
    with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
        row = session.get(BackgroundJob, ids["v:dead"])
        assert row is not None
        assert row.status == "queued"

    conflict = client.post(f"/api/v1/jobs/{ids['v:ok']}/replay", headers=integration)
    assert conflict.status_code == 409
    assert conflict.json()["resourceType"] == "OperationOutcome"
    assert client.get("/api/v1/jobs/999999", headers=integration).status_code == 404
    assert (
        client.get("/api/v1/jobs", params={"status": "bogus"}, headers=integration).status_code
        == 400
    )

    # Compliance staff may read but not replay.
    compliance = staff_headers(settings, "compliance")
    assert client.get("/api/v1/jobs", headers=compliance).status_code == 200
    assert (
        client.post(f"/api/v1/jobs/{ids['v:dead']}/replay", headers=compliance).status_code == 403
    )

    events = [e for e, _ in _events(client)]
    assert events[:3] == ["jobs.list", "jobs.read", "jobs.replayed"]


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONCOCDS_DATABASE_URL": database_url}
    return subprocess.run(
        [ONCOCDS, "jobs", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_list_show_replay(client: TestClient, settings: Settings) -> None:
    ids = _seed(client)
    url = settings.database_url
    listing = _cli(url, "list", "--status", "dead")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.strip().splitlines()
    assert len(lines) == 2
    assert "v:dead" in lines[0]
    assert "unsupported content type" in lines[0]
    assert lines[1] == "1 job(s)"
    shown = json.loads(_cli(url, "show", str(ids["v:ok"])).stdout)
    assert (shown["key"], shown["status"], shown["payload"]) == (
        "v:ok",
        "succeeded",
        {"study": "1.2.3"},
    )
    replayed = _cli(url, "replay", "--all-dead")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == f"{ids['v:dead']} queued"
    refused = _cli(url, "replay", str(ids["v:ok"]))
    assert refused.returncode == 2
    assert (
        refused.stderr == f"oncocds: error: job {ids['v:ok']} is succeeded and cannot be replayed\n"
    )
    missing = _cli(url, "show", "424242")
    assert (missing.returncode, missing.stderr) == (2, "oncocds: error: job 424242 not found\n")
    events = [e for e, _ in _events(client)]
    assert events == ["jobs.list", "jobs.read", "jobs.replayed"]
