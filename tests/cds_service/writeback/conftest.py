"""Keys, a validating token endpoint and a FHIR endpoint, each a real HTTP server per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
