"""The analyses API is for clinical API clients: the app trusts the CDS test client and the
``client`` fixture signs every request with its key (aud = the URL called)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_service.security.signing import SigningKey
from cds_service.settings import Settings
from tests.cds_service.cdshooks.conftest import (
    ClientJwtAuth,
    client_entry,
    es_key,
    write_clients,
)

__all__ = ["es_key", "write_clients"]


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    database_url: str,
    write_clients: Callable[[list[dict[str, Any]]], Path],
    es_key: SigningKey,
    tmp_path: Path,
) -> Settings:
    return make_settings(
        database_url=database_url,
        clients_file=write_clients([client_entry([es_key])]),
        compliance={"dev_key_path": tmp_path / "dev-oidc.json"},
    )


@pytest.fixture
def client(app: FastAPI, es_key: SigningKey) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.auth = ClientJwtAuth(es_key)
        yield test_client
