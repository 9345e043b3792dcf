"""Fixtures for the CDS Hooks tests: client keys, a clients file, apps and signed requests.

Tokens are signed with keys generated here (no network); the trusted EHR client is ``EHR_ISS``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from cds_service.app import create_app
from cds_service.compliance.devtoken import mint_dev_token
from cds_service.models.audit import AuditRecord
from cds_service.security.signing import SigningKey, generate_signing_key, sign_client_jwt
from cds_service.settings import Settings
from tests.cds_service.cdshooks.services import ALL as TEST_SERVICES
from tests.support.fhir_server import fhir_server, fhir_server_session

__all__ = ["fhir_server", "fhir_server_session"]

BASE = "http://testserver"
EHR_ISS = "https://ehr.example.org"
EHR_FHIR = "https://fhir.example.org/r4"


@pytest.fixture(scope="session")
def es_key() -> SigningKey:
    return generate_signing_key("ES384", kid="ehr-es384")


@pytest.fixture(scope="session")
def rs_key() -> SigningKey:
    return generate_signing_key("RS384", kid="ehr-rs384")


def client_entry(keys: list[SigningKey], **overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "iss": EHR_ISS,
        "jwks": {"keys": [k.as_dict(private=False) for k in keys]},
        "fhir_servers": [EHR_FHIR],
    }
    entry.update(overrides)
    return entry


@pytest.fixture
def write_clients(tmp_path: Path) -> Callable[[list[dict[str, Any]]], Path]:
    def write(entries: list[dict[str, Any]]) -> Path:
        path = tmp_path / f"clients-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps({"clients": entries}))
        return path

    return write


class ClientJwtAuth:
    """Signs every request like a clinical API client: a fresh JWT, ``aud`` = the URL called.

    A callable (the test client's ``auth``), so it works whichever httpx the client uses.
    """

    def __init__(self, key: SigningKey, iss: str = EHR_ISS) -> None:
        self.key = key
        self.iss = iss

    def __call__(self, request: Any) -> Any:
        if "authorization" not in request.headers:  # a test may send its own (or a bad) one
            token = sign_client_jwt(self.key, iss=self.iss, aud=BASE + request.url.path)
            request.headers["Authorization"] = f"Bearer {token}"
        return request


def staff_headers(settings: Settings, role: str) -> dict[str, str]:
    """A staff bearer token from the development OIDC issuer (``oncocds dev-token --role``)."""
    return {"Authorization": f"Bearer {mint_dev_token(settings, role=role)}"}


class CdsClient:
    """A TestClient that signs every request like a CDS client would."""

    def __init__(self, http: TestClient, key: SigningKey, settings: Settings) -> None:
        self.http = http
        self.key = key
        self.settings = settings

    def token(self, path: str, **kwargs: Any) -> str:
        kwargs.setdefault("iss", EHR_ISS)
        kwargs.setdefault("aud", BASE + path)
        return sign_client_jwt(self.key, **kwargs)

    def headers(self, path: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(path, **kwargs)}"}

    def discovery(self) -> Any:
        return self.http.get("/cds-services", headers=self.headers("/cds-services"))

    def call(self, service_id: str, body: dict[str, Any]) -> Any:
        path = f"/cds-services/{service_id}"
        return self.http.post(path, json=body, headers=self.headers(path))

    def feedback(self, service_id: str, body: dict[str, Any]) -> Any:
        path = f"/cds-services/{service_id}/feedback"
        return self.http.post(path, json=body, headers=self.headers(path))

    def summary(self, *, role: str = "governance", **params: Any) -> Any:
        """The governance summary, with a staff token (it is a staff route, not a client one)."""
        headers = staff_headers(self.settings, role)
        return self.http.get("/api/v1/feedback/summary", params=params, headers=headers)

    def audit_rows(self, event_type: str | None = None) -> list[AuditRecord]:
        engine = create_engine(self.settings.database_url)
        try:
            with engine.connect() as conn:
                stmt = select(AuditRecord).order_by(AuditRecord.seq)
                if event_type:
                    stmt = stmt.where(AuditRecord.event_type == event_type)
                return list(conn.execute(stmt).all())  # type: ignore[arg-type]
        finally:
            engine.dispose()


@pytest.fixture
def make_cds_client(
    *,
    make_settings: Callable[..., Settings],
    write_clients: Callable[[list[dict[str, Any]]], Path],
    es_key: SigningKey,
    rs_key: SigningKey,
    sqlite_url: str,
    tmp_path: Path,
) -> Iterator[Callable[..., CdsClient]]:
    opened: list[TestClient] = []

    def factory(
        *,
        clients: list[dict[str, Any]] | None = None,
        services: Any = TEST_SERVICES,
        key: SigningKey | None = None,
        database_url: str | None = None,
        **settings_overrides: Any,
    ) -> CdsClient:
        path = write_clients(clients if clients is not None else [client_entry([es_key, rs_key])])
        settings_overrides.setdefault("compliance", {"dev_key_path": tmp_path / "dev-oidc.json"})
        settings = make_settings(
            database_url=database_url or sqlite_url, clients_file=path, **settings_overrides
        )
        http = TestClient(
            create_app(settings, cds_services=services), raise_server_exceptions=False
        )
        http.__enter__()
        opened.append(http)
        return CdsClient(http, key or es_key, settings)

    yield factory
    for http in opened:
        http.__exit__(None, None, None)


@pytest.fixture
def cds(make_cds_client: Callable[..., CdsClient]) -> CdsClient:
    return make_cds_client()


def patient_view_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr1", "patientId": "p1"},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "p1"}},
    }
    body.update(overrides)
    return body
