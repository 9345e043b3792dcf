"""The SMART Backend Services client against a real, validating token endpoint.

Each property SMART requires of the client assertion (alg ES384/RS384, kid, exp ≤ 5 min, fresh
jti) is checked on the assertions the token endpoint actually received; authlib's default
``PrivateKeyJWT`` is shown to be refused by the same endpoint, so the endpoint is not a pushover.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from integrations.fhir.smart_backend import (
    AssertionSigner,
    SmartAuthError,
    SmartBackendClient,
    WritebackHttpError,
)
from tests.cds_service.writeback.conftest import CLIENT_ID, Peers

BUNDLE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "fullUrl": "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
            "request": {"method": "POST", "url": "Observation"},
        }
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _client(
    peers: Peers, key: ECKey | RSAKey, kid: str, alg: str, clock: Clock | None = None
) -> SmartBackendClient:
    signer = AssertionSigner(client_id=CLIENT_ID, key=key, kid=kid, alg=alg)  # type: ignore[arg-type]
    return SmartBackendClient(
        token_url=peers.token_url,
        signer=signer,
        scope="system/Observation.c",
        timeout=5,
        clock=clock or time.time,
    )


@pytest.mark.parametrize(
    ("alg", "kid", "key_fixture"), [("ES384", "ec-1", "ec_key"), ("RS384", "rsa-1", "rsa_key")]
)
def test_assertions_have_alg_kid_short_exp_and_fresh_jti(
    peers: Peers, alg: str, kid: str, key_fixture: str, request: pytest.FixtureRequest
) -> None:
    peers.token.expires_in = None  # no caching: every call fetches a token with a new assertion
    key = request.getfixturevalue(key_fixture)
    before = int(time.time())
    with _client(peers, key, kid, alg) as client:
        for _ in range(3):
            client.post_transaction(peers.fhir_url, BUNDLE)
    after = int(time.time())
    assert peers.token.rejections == []
    sent = peers.token.assertions
    assert len(sent) == 3
    for assertion in sent:
        header, claims = assertion["header"], assertion["claims"]
        assert header["alg"] == alg
        assert header["kid"] == kid
        assert header["typ"] == "JWT"
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["aud"] == peers.token_url
        assert before <= claims["iat"] <= after
        assert 0 < claims["exp"] - claims["iat"] <= 300
        assert claims["exp"] <= after + 300
    assert len({a["claims"]["jti"] for a in sent}) == 3
    assert len(peers.fhir.received) == 3


def test_token_cached_no_longer_than_expires_in(peers: Peers, ec_key: ECKey) -> None:
    peers.token.expires_in = 60
    clock = Clock()
    with _client(peers, ec_key, "ec-1", "ES384", clock) as client:
        client.post_transaction(peers.fhir_url, BUNDLE)
        clock.now += 30
        client.post_transaction(peers.fhir_url, BUNDLE)
        assert client.token_requests == 1
        clock.now += 30  # now 60 s after issue: past expires_in, so a new token
        client.post_transaction(peers.fhir_url, BUNDLE)
        assert client.token_requests == 2
    assert len(peers.token.assertions) == 2


def test_authlib_default_private_key_jwt_is_refused(peers: Peers, ec_key: ECKey) -> None:
    """authlib's own signer (no kid, exp = iat + 3600) fails SMART validation."""
    oauth = OAuth2Client(
        client_id=CLIENT_ID,
        client_secret=ec_key,
        token_endpoint_auth_method="private_key_jwt",
        scope="system/Observation.c",
    )
    oauth.register_client_auth_method(
        PrivateKeyJWT(peers.token_url, alg="ES384", headers={"kid": "ec-1"})
    )
    with oauth, pytest.raises(Exception, match="invalid_client"):
        oauth.fetch_token(peers.token_url, grant_type="client_credentials")
    assert peers.token.rejections == ["exp more than 300 s ahead"]


def test_token_endpoint_refuses_replayed_jti_and_unknown_kid(peers: Peers, ec_key: ECKey) -> None:
    import httpx2

    now = int(time.time())
    claims = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": peers.token_url,
        "iat": now,
        "exp": now + 120,
        "jti": "same",
    }
    form = {
        "grant_type": "client_credentials",
        "scope": "system/Observation.c",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    good = jwt.encode({"alg": "ES384", "kid": "ec-1"}, claims, ec_key, algorithms=["ES384"])
    unknown = jwt.encode({"alg": "ES384", "kid": "nobody"}, claims, ec_key, algorithms=["ES384"])
    statuses = [
        httpx2.post(peers.token_url, data={**form, "client_assertion": a}).status_code
        for a in (good, good, unknown)
    ]
    assert statuses == [200, 401, 401]
    assert peers.token.rejections == ["jti replayed", "unknown or missing kid"]


def test_refused_token_is_a_permanent_error(peers: Peers, ec_key: ECKey) -> None:
    with (
        _client(peers, ec_key, "not-registered", "ES384") as client,
        pytest.raises(SmartAuthError, match=r"401 \(invalid_client\)") as info,
    ):
        client.post_transaction(peers.fhir_url, BUNDLE)
    assert info.value.transient is False
    assert peers.fhir.requests == 0


def test_server_errors_are_transient_and_client_errors_are_not(peers: Peers, ec_key: ECKey) -> None:
    peers.fhir.script = [503, 429, 422]
    with _client(peers, ec_key, "ec-1", "ES384") as client:
        for expected_status, transient in ((503, True), (429, True), (422, False)):
            with pytest.raises(WritebackHttpError) as info:
                client.post_transaction(peers.fhir_url, BUNDLE)
            assert (info.value.status, info.value.transient) == (expected_status, transient)
        result = client.post_transaction(peers.fhir_url, BUNDLE)
    assert result.locations == ("Observation/1/_history/1",)


def test_timeout_is_transient(peers: Peers, ec_key: ECKey) -> None:
    peers.fhir.script = ["stall"]
    peers.fhir.stall_seconds = 2.0
    signer = AssertionSigner(client_id=CLIENT_ID, key=ec_key, kid="ec-1", alg="ES384")
    with (
        SmartBackendClient(
            token_url=peers.token_url, signer=signer, scope="s", timeout=0.5
        ) as client,
        pytest.raises(WritebackHttpError, match="timed out") as info,
    ):
        client.post_transaction(peers.fhir_url, BUNDLE)
    assert info.value.transient is True


def test_signer_refuses_long_lifetimes(ec_key: ECKey) -> None:
    with pytest.raises(ValueError, match="1-300"):
        AssertionSigner(client_id="c", key=ec_key, kid="k", alg="ES384", lifetime=301)
