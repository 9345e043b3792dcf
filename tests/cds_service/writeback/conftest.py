"""Keys, a validating token endpoint and a FHIR endpoint, each a real HTTP server per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from tests.cds_service.writeback.peers import FhirEndpoint, TokenEndpoint, serve

CLIENT_ID = "oncocds-backend"


@dataclass
class Peers:
    token: TokenEndpoint
    fhir: FhirEndpoint
    token_url: str
    fhir_url: str


@pytest.fixture(scope="session")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-384", private=True)


@pytest.fixture(scope="session")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, private=True)


@pytest.fixture
def peers(ec_key: ECKey, rsa_key: RSAKey) -> Iterator[Peers]:
    token = TokenEndpoint(
        client_id=CLIENT_ID,
        public_keys={
            "ec-1": ECKey.import_key(ec_key.as_pem(private=False)),
            "rsa-1": RSAKey.import_key(rsa_key.as_pem(private=False)),
        },
    )
    fhir = FhirEndpoint(tokens=token)
    with serve(token.app()) as token_base, serve(fhir.app()) as fhir_base:
        yield Peers(token, fhir, f"{token_base}/token", f"{fhir_base}/fhir")


@pytest.fixture
def key_file(tmp_path: Path, ec_key: ECKey) -> Path:
    """The backend client's private key (``ec-1``, ES384) as the PEM file the settings name."""
    path = tmp_path / "backend-key.pem"
    path.write_bytes(ec_key.as_pem(private=True))
    return path


WritebackSettings = Callable[..., dict[str, Any]]


@pytest.fixture
def smart_writeback(peers: Peers, key_file: Path) -> WritebackSettings:
    """``ONCOCDS_WRITEBACK__*`` settings (as a dict) for a FHIR server at ``fhir_base_url``,
    authorised by the token endpoint of ``peers`` with the ``ec-1`` key; keyword arguments add
    or replace settings (``max_attempts=3``)."""

    def settings(fhir_base_url: str, **overrides: Any) -> dict[str, Any]:
        return {
            "fhir_base_url": fhir_base_url,
            "token_url": peers.token_url,
            "client_id": CLIENT_ID,
            "private_key_path": key_file,
            "kid": "ec-1",
            "alg": "ES384",
            **overrides,
        }

    return settings
