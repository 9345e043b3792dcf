"""Imaging service fixtures: a bundle trained by ``oncocds train`` in this session, apps with it
installed, clients that sign like a clinical client, and a helper that runs the due jobs.

The bundle is a 4-8-16-32 channel ResNet trained for two epochs on the tiny mixed set of
:mod:`tests.training.patches` (two real IDC patches, scikit-image IHC tiles, synthetic
textures). It exercises the plumbing; no test here makes an accuracy claim.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from cds_service.app import create_app
from cds_service.models.audit import AuditRecord
from cds_service.security.signing import SigningKey, generate_signing_key, sign_client_jwt
from cds_service.settings import Settings
from tests.cds_service.cdshooks.conftest import BASE, EHR_ISS, client_entry
from tests.support.fhir_server import fhir_server, fhir_server_session
from tests.support.orthanc import orthanc
from tests.training.patches import build_patch_set, write_config

__all__ = ["fhir_server", "fhir_server_session", "orthanc"]


@pytest.fixture(scope="session")
def imaging_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle exported by ``oncocds train`` (a child ``python -m training``) in this session."""
    from cds_service.cli import main

    base = tmp_path_factory.mktemp("imaging-bundle")
    data = build_patch_set(base / "data")
    config = write_config(base / "train.toml", data, base / "out", epochs=2)
    assert main(["train", str(config), "--progress", "none"]) == 0
    return base / "out" / "bundle"


@pytest.fixture(scope="session")
def client_key() -> SigningKey:
    return generate_signing_key("ES384", kid="ehr-imaging")


@dataclass
class ImagingApp:
    """An app with its settings, a signing test client, and the jobs it enqueued."""

    app: FastAPI
    http: TestClient
    settings: Settings
    key: SigningKey

    def headers(self, path: str) -> dict[str, str]:
        token = sign_client_jwt(self.key, iss=EHR_ISS, aud=BASE + path)
        return {"Authorization": f"Bearer {token}"}

    def post(self, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers(path), **kwargs.pop("headers", {})}
        return self.http.post(path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers(path), **kwargs.pop("headers", {})}
        return self.http.get(path, headers=headers, **kwargs)

    def call(self, service_id: str, body: dict[str, Any]) -> Any:
        return self.post(f"/cds-services/{service_id}", json=body)

    def run_jobs(self, *, rounds: int = 20) -> list[Any]:
        """Run every due job now, in this thread (as the in-process executor would)."""
        return run_due_jobs(self.app, rounds=rounds)

    def audit(self, event_type: str) -> list[Any]:
        engine = create_engine(self.settings.database_url)
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


def run_due_jobs(app: FastAPI, *, rounds: int = 20) -> list[Any]:
    """Claim and run due jobs until none is due (retries are due after their backoff)."""
    from cds_service.jobs.registry import ResourcePool
    from tests.support.jobs import run_due

    settings: Settings = app.state.settings
    pool = getattr(app.state, "_test_job_resources", None)
    if pool is None:
        pool = app.state._test_job_resources = ResourcePool(settings)
    outcomes: list[Any] = []
    for _ in range(rounds):
        ran = run_due(app.state.sessionmaker, settings, resources=pool)
        if not ran:
            break
        outcomes += ran
    return outcomes


@pytest.fixture
def make_imaging_app(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    client_key: SigningKey,
) -> Iterator[Callable[..., ImagingApp]]:
    opened: list[TestClient] = []

    def factory(
        database_url: str,
        *,
        bundle: Path | None,
        allowlist: tuple[str, ...] = (),
        fhir_servers: tuple[str, ...] = ("https://fhir.example.org/r4",),
        writeback: dict[str, Any] | None = None,
        llm: dict[str, Any] | None = None,
        **imaging_service: Any,
    ) -> ImagingApp:
        clients = tmp_path / "clients.json"
        import json

        entry = client_entry([client_key], fhir_servers=list(fhir_servers))
        clients.write_text(json.dumps({"clients": [entry]}))
        settings = make_settings(
            database_url=database_url,
            clients_file=clients,
            reports={"secret_file": tmp_path / "report-secret"},
            imaging={"bundle_path": bundle} if bundle is not None else {},
            imaging_service={"allowlist": allowlist, **imaging_service},
            jobs={"in_process": False},  # tests run the due jobs themselves (run_jobs)
            writeback=writeback or {},
            llm=llm or {},
        )
        app = create_app(settings)
        http = TestClient(app, raise_server_exceptions=False)
        http.__enter__()
        opened.append(http)
        return ImagingApp(app, http, settings, client_key)

    yield factory
    for http in opened:
        pool = getattr(http.app.state, "_test_job_resources", None)  # type: ignore[attr-defined]
        if pool is not None:
            pool.close()  # per-process resources the jobs built (HTTP clients hold sockets)
        http.__exit__(None, None, None)
