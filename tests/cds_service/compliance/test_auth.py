"""Authorization of the compliance API: who is refused, and every refusal is audited.

The "clinical client" token is what a CDS Hooks client (an EHR) sends: an ES384 JWT signed with
the EHR's own key, ``iss`` = the EHR. The JWKS-URL test serves the provider's keys through an
httpx ``MockTransport``: a fake at the network edge, since no OIDC provider runs here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from cds_service.app import create_app
from cds_service.audit import AuditTrail
from cds_service.compliance.auth import ComplianceAuthenticator
from cds_service.compliance.devtoken import DEV_ISSUER, dev_key
from cds_service.settings import Settings

API = "/api/v1/audit"


def _refusals(trail: AuditTrail) -> list[dict[str, Any]]:
    with trail.engine.connect() as conn:
        return [r for r in trail.iter_rows(conn) if r["event_type"] == "auth.rejected"]


def _clinical_client_token(settings: Settings) -> str:
    ehr_key = ECKey.generate_key("P-384", auto_kid=True)
    now = int(time.time())
    claims = {
        "iss": "https://ehr.example.org",
        "sub": "ehr-client",
        "aud": "http://testserver/cds-services/oncology-genomics",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode({"alg": "ES384", "kid": ehr_key.kid}, claims, ehr_key, algorithms=["ES384"])


def _signed_by_dev_key(settings: Settings, **overrides: Any) -> str:
    key = dev_key(settings)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "sub": "someone",
        "aud": settings.compliance.audience,
        "iat": now,
        "exp": now + 300,
        "roles": ["audit.read", "audit.export"],
    }
    claims.update(overrides)
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("no token", 401, "no bearer token"),
        ("clinical client token", 401, "token invalid"),
        ("token without the role", 403, "lacks the audit.read role"),
        ("garbage", 401, "token"),
        ("expired", 401, "ExpiredTokenError"),
        ("wrong audience", 401, "InvalidClaimError"),
        ("wrong issuer", 401, "InvalidClaimError"),
        ("HS256 with the public key as secret", 401, "token invalid"),
        ("alg none", 401, "token"),
        ("lifetime too long", 401, "lifetime"),
    ],
)
def test_refusals_are_audited_without_the_token(
    *,
    cclient: TestClient,
    trail: AuditTrail,
    compliance_settings: Settings,
    token: Callable[..., str],
    case: str,
    status: int,
    reason: str,
) -> None:
    now = int(time.time())
    bearer: str | None
    if case == "no token":
        bearer = None
    elif case == "clinical client token":
        bearer = _clinical_client_token(compliance_settings)
    elif case == "token without the role":
        bearer = token("clinician")
    elif case == "garbage":
        bearer = "not-a-jwt"
    elif case == "expired":
        bearer = _signed_by_dev_key(compliance_settings, iat=now - 4000, exp=now - 3000)
    elif case == "wrong audience":
        bearer = _signed_by_dev_key(compliance_settings, aud="some-other-api")
    elif case == "wrong issuer":
        bearer = _signed_by_dev_key(compliance_settings, iss="https://evil.example")
    elif case == "HS256 with the public key as secret":
        public = json.dumps(dev_key(compliance_settings).as_dict(private=False)).encode()
        secret = OctKey.import_key(public)
        bearer = jwt.encode(
            {"alg": "HS256"},
            {
                "iss": DEV_ISSUER,
                "sub": "x",
                "aud": "oncocds-compliance",
                "iat": now,
                "exp": now + 60,
            },
            secret,
            algorithms=["HS256"],
        )
    elif case == "alg none":
        import base64

        def b64(d: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

        bearer = (
            b64({"alg": "none"})
            + "."
            + b64({"iss": DEV_ISSUER, "sub": "x", "roles": ["audit.read"]})
            + "."
        )
    else:
        bearer = _signed_by_dev_key(compliance_settings, exp=now + 86400)
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    response = cclient.get(API, params={"patient": "Patient/p1"}, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.content == b""  # no detail to the client
    refusals = _refusals(trail)
    assert len(refusals) == 1
    refusal = refusals[0]
    assert refusal["outcome"] == 4
    assert reason in refusal["outcome_desc"]
    assert refusal["details"]["route"] == "/api/v1/audit"
    assert refusal["patient_id"] is None
    stored = json.dumps({k: str(v) for k, v in refusal.items()})
    if bearer:
        assert bearer not in stored
        assert bearer.split(".")[0] not in stored or len(bearer.split(".")[0]) < 8
    # Nothing else was recorded: the refused request read nothing.
    with trail.engine.connect() as conn:
        assert not [r for r in trail.iter_rows(conn) if r["event_type"].startswith("audit.")]


def test_read_role_cannot_export(
    cclient: TestClient, trail: AuditTrail, token: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {token('compliance-read')}"}
    assert cclient.get(API, headers=headers).status_code == 200
    export = cclient.get(f"{API}/export", headers=headers)
    assert export.status_code == 403
    assert export.json()["resourceType"] == "OperationOutcome"
    refusal = _refusals(trail)[0]
    assert refusal["agent_who"] == "dev-compliance-read"
    assert refusal["agent_type"] == "user"
    assert "audit.export" in refusal["outcome_desc"]


def test_scope_claim_grants_permission(cclient: TestClient, compliance_settings: Settings) -> None:
    bearer = _signed_by_dev_key(compliance_settings, roles=[], scope="openid audit.read")
    assert cclient.get(API, headers={"Authorization": f"Bearer {bearer}"}).status_code == 200


def test_site_provider_jwks_url_with_rsa_key_rotation(
    make_settings: Callable[..., Settings], sqlite_url: str, tmp_path: Path
) -> None:
    """RS256 tokens from a site provider whose JWKS is fetched by URL and rotated."""
    old_key = RSAKey.generate_key(2048, auto_kid=True)
    new_key = RSAKey.generate_key(2048, auto_kid=True)
    served: dict[str, Any] = {"keys": [old_key.as_dict(private=False)]}
    fetches: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetches.append(str(request.url))
        return httpx.Response(200, json=served)

    settings = make_settings(
        database_url=sqlite_url,
        audit={"signing_key_path": tmp_path / "k.pem", "checkpoint_interval_seconds": 0},
        compliance={
            "oidc_issuer": "https://idp.hospital.example/realms/staff",
            "jwks_url": "https://idp.hospital.example/realms/staff/certs",
            "audience": "oncocds",
        },
    )
    app = create_app(settings)
    app.state.compliance_auth = ComplianceAuthenticator(
        settings, jwks_transport=httpx.MockTransport(handler)
    )

    def mint(key: RSAKey) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://idp.hospital.example/realms/staff",
            "sub": "officer-7",
            "aud": ["oncocds", "account"],
            "iat": now,
            "exp": now + 300,
            "realm_access": {"roles": ["audit.read"]},
        }
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])

    with TestClient(app) as client:
        ok = client.get(API, headers={"Authorization": f"Bearer {mint(old_key)}"})
        assert ok.status_code == 200
        served["keys"] = [new_key.as_dict(private=False)]
        # A token signed with the new key: the cached JWKS lacks it, so it is refreshed.
        import cds_service.compliance.auth as auth_module

        auth_module._JWKS_MIN_REFRESH_SECONDS = 0  # type: ignore[misc]
        try:
            rotated = client.get(API, headers={"Authorization": f"Bearer {mint(new_key)}"})
        finally:
            auth_module._JWKS_MIN_REFRESH_SECONDS = 30  # type: ignore[misc]
        assert rotated.status_code == 200
    assert fetches == ["https://idp.hospital.example/realms/staff/certs"] * 2


def test_dev_issuer_refused_in_production(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from cds_service.compliance.devtoken import mint_dev_token
    from cds_service.errors import InsecureSettingsError

    settings = make_settings(environment="production")
    with pytest.raises(InsecureSettingsError):
        mint_dev_token(settings)
    assert ComplianceAuthenticator(settings).issuer is None
