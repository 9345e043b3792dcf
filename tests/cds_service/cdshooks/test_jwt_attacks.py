"""Client JWT attack suite (CDS Hooks 2.0 §Trusting CDS Clients): every case is a bare 401 with an
audit record that gives the reason and never the token. Positive controls show the same paths
accept valid tokens, so a 401 here is the check working, not a broken setup.

The JWK Set URL cases use a real HTTP server on 127.0.0.1 (``jwks_server``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import RSAKey

from cds_service.security.signing import SigningKey, generate_signing_key, sign_client_jwt
from tests.cds_service.cdshooks.conftest import (
    BASE,
    EHR_ISS,
    CdsClient,
    client_entry,
    patient_view_body,
)

DISCOVERY = "/cds-services"
SERVICE = "/cds-services/test-patient-view"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(aud: str = BASE + DISCOVERY, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": EHR_ISS,
        "aud": aud,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signature)}"


def _hmac(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}[header["alg"]]
    sig = hmac.new(secret, f"{head}.{body}".encode(), digest).digest()
    return f"{head}.{body}.{_b64(sig)}"


class JwksServer:
    """Serves JWK Sets over real HTTP; ``sets[path]`` is what GET path returns."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[str, Any]] = {}
        self.hits: list[str] = []
        self.cache_control: str | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                data = outer.sets.get(self.path)
                payload = json.dumps(data).encode() if data is not None else b"{}"
                self.send_response(200 if data is not None else 404)
                self.send_header("content-type", "application/json")
                if outer.cache_control:
                    self.send_header("cache-control", outer.cache_control)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def attacker_key() -> SigningKey:
    return generate_signing_key("ES384", kid="ehr-es384")  # same kid as the trusted key


@pytest.fixture(scope="module")
def p256_key() -> SigningKey:
    return generate_signing_key("ES256", kid="ehr-es256")


def _pem_public(key: SigningKey) -> bytes:
    public = key.get_op_key("verify")
    return public.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# Each case: (name, path, builder(es_key, rs_key, attacker, p256) -> token or None=no header,
#             raw Authorization header override or None)
Builder = Callable[..., str]


def _sign(key: SigningKey, path: str = DISCOVERY, **kw: Any) -> str:
    kw.setdefault("iss", EHR_ISS)
    kw.setdefault("aud", BASE + path)
    return sign_client_jwt(key, **kw)


def _tamper_payload(token: str) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["tenant"] = "someone-else"
    return f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"


def _tamper_signature(token: str) -> str:
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[5] ^= 0xFF
    return f"{head}.{body}.{_b64(bytes(raw))}"


CASES: list[tuple[str, str, Callable[..., str | None]]] = [
    ("no authorization header", DISCOVERY, lambda k: None),
    ("empty bearer", DISCOVERY, lambda k: ""),
    ("garbage token", DISCOVERY, lambda k: "not-a-jwt"),
    ("two segments", DISCOVERY, lambda k: "eyJhbGciOiJFUzM4NCJ9.e30"),
    (
        "alg none",
        DISCOVERY,
        lambda k: _unsigned({"alg": "none", "typ": "JWT", "kid": "ehr-es384"}, _claims()),
    ),
    (
        "alg None mixed case",
        DISCOVERY,
        lambda k: _unsigned({"alg": "None", "typ": "JWT", "kid": "ehr-es384"}, _claims()),
    ),
    (
        "HS256 signed with the public key",
        DISCOVERY,
        lambda k: _hmac(
            {"alg": "HS256", "typ": "JWT", "kid": "ehr-es384"}, _claims(), _pem_public(k["es"])
        ),
    ),
    (
        "HS384 signed with the JWK x coordinate",
        DISCOVERY,
        lambda k: _hmac(
            {"alg": "HS384", "typ": "JWT", "kid": "ehr-es384"},
            _claims(),
            k["es"].as_dict(private=False)["x"].encode(),
        ),
    ),
    ("RS256 not accepted", DISCOVERY, lambda k: _sign(k["rs_any"], alg="RS256")),
    ("ES256 not accepted", DISCOVERY, lambda k: _sign(k["p256"], alg="ES256")),
    (
        "wrong aud host",
        DISCOVERY,
        lambda k: _sign(k["es"], aud="https://evil.example/cds-services"),
    ),
    ("aud of another endpoint", SERVICE, lambda k: _sign(k["es"], path=DISCOVERY)),
    (
        "aud of another service",
        SERVICE,
        lambda k: _sign(k["es"], path="/cds-services/test-order-sign"),
    ),
    ("aud with trailing slash", DISCOVERY, lambda k: _sign(k["es"], aud=BASE + DISCOVERY + "/")),
    ("expired", DISCOVERY, lambda k: _sign(k["es"], now=time.time() - 600, lifetime_s=300)),
    ("iat in the future", DISCOVERY, lambda k: _sign(k["es"], now=time.time() + 300)),
    (
        "nbf in the future",
        DISCOVERY,
        lambda k: _sign(k["es"], extra_claims={"nbf": int(time.time()) + 600}),
    ),
    ("missing jti", DISCOVERY, lambda k: _sign(k["es"], extra_claims={"jti": None})),
    ("empty jti", DISCOVERY, lambda k: _sign(k["es"], extra_claims={"jti": ""})),
    ("missing exp", DISCOVERY, lambda k: _sign(k["es"], extra_claims={"exp": None})),
    ("missing iat", DISCOVERY, lambda k: _sign(k["es"], extra_claims={"iat": None})),
    ("exp as string", DISCOVERY, lambda k: _sign(k["es"], extra_claims={"exp": "9999999999"})),
    ("lifetime of two days", DISCOVERY, lambda k: _sign(k["es"], lifetime_s=2 * 86400)),
    ("unknown iss", DISCOVERY, lambda k: _sign(k["es"], iss="https://unknown.example")),
    ("missing iss", DISCOVERY, lambda k: _sign(k["es"], extra_claims={"iss": None})),
    ("unknown kid", DISCOVERY, lambda k: _sign(k["es"], extra_header={"kid": "nope"})),
    ("missing kid", DISCOVERY, lambda k: _sign(k["es"], extra_header={"kid": None})),
    ("typ not JWT", DISCOVERY, lambda k: _sign(k["es"], extra_header={"typ": "at+jwt"})),
    ("crit header", DISCOVERY, lambda k: _sign(k["es"], extra_header={"crit": ["kid"]})),
    ("tampered payload", DISCOVERY, lambda k: _tamper_payload(_sign(k["es"]))),
    ("tampered signature", DISCOVERY, lambda k: _tamper_signature(_sign(k["es"]))),
    ("attacker key with a trusted kid", DISCOVERY, lambda k: _sign(k["attacker"])),
    (
        "wrong key type: ES384 naming the RSA kid",
        DISCOVERY,
        lambda k: _sign(k["es"], extra_header={"kid": "ehr-rs384"}),
    ),
    (
        "jku off the allowlist",
        DISCOVERY,
        lambda k: _sign(k["attacker"], extra_header={"jku": "https://evil.example/jwks.json"}),
    ),
    (
        "oversized token",
        DISCOVERY,
        lambda k: _sign(k["es"], extra_claims={"pad": "x" * 10_000}),
    ),
    ("service call without token", SERVICE, lambda k: None),
    (
        "feedback with a discovery token",
        "/cds-services/test-patient-view/feedback",
        lambda k: _sign(k["es"]),
    ),
    # The clinical analyses API verifies the same way (aud = the exact URL called).
    ("analysis read with a discovery token", "/api/v1/analyses/a1", lambda k: _sign(k["es"])),
]


@pytest.fixture
def keys(es_key: SigningKey, rs_key: SigningKey, attacker_key: SigningKey, p256_key: SigningKey):
    # The trusted RSA key without its "alg" member, so that joserfc will sign RS256 with it.
    rs_any = RSAKey.import_key(
        {k: v for k, v in rs_key.as_dict(private=True).items() if k != "alg"}
    )
    return {
        "es": es_key,
        "rs": rs_key,
        "rs_any": rs_any,
        "attacker": attacker_key,
        "p256": p256_key,
    }


def _request(cds: CdsClient, path: str, token: str | None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if path == SERVICE:
        return cds.http.post(path, json=patient_view_body(), headers=headers)
    if path.endswith("/feedback"):
        return cds.http.post(path, json={"feedback": []}, headers=headers)
    return cds.http.get(path, headers=headers)


def test_attack_suite_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize(("name", "path", "build"), CASES, ids=[c[0] for c in CASES])
def test_attack_is_a_bare_401_and_audited(
    cds: CdsClient, keys: dict[str, SigningKey], name: str, path: str, build: Any
) -> None:
    token = build(keys)
    before = len(cds.audit_rows("auth.rejected"))
    response = _request(cds, path, token)
    assert response.status_code == 401, name
    assert response.content == b""
    assert response.headers["www-authenticate"] == "Bearer"
    rejected = cds.audit_rows("auth.rejected")
    assert len(rejected) == before + 1
    row = rejected[-1]
    assert row.details["reason"]
    if token:
        # Never the token (nor its signature) in the audit trail.
        stored = json.dumps([row.details, row.outcome_desc, row.agent_who])
        assert token not in stored
        assert token.split(".")[-1] not in stored or not token.split(".")[-1]


def test_replayed_jti_is_rejected_and_audited(cds: CdsClient, es_key: SigningKey) -> None:
    token = _sign(es_key)
    first = cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {token}"})
    assert first.status_code == 200
    second = cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {token}"})
    assert second.status_code == 401
    assert second.content == b""
    assert cds.audit_rows("auth.rejected")[-1].details["reason"] == "jti replayed"


def test_tenant_must_match_a_tenant_bound_client(
    make_cds_client: Any, es_key: SigningKey, rs_key: SigningKey
) -> None:
    cds = make_cds_client(clients=[client_entry([es_key, rs_key], tenant="hospital-a")])
    wrong = cds.http.get(DISCOVERY, headers=cds.headers(DISCOVERY, tenant="hospital-b"))
    assert wrong.status_code == 401
    absent = cds.http.get(DISCOVERY, headers=cds.headers(DISCOVERY))
    assert absent.status_code == 401
    right = cds.http.get(DISCOVERY, headers=cds.headers(DISCOVERY, tenant="hospital-a"))
    assert right.status_code == 200


# ------------------------------------------------------------------ positive controls


@pytest.mark.parametrize("which", ["es", "rs"])
def test_valid_es384_and_rs384_tokens_are_accepted(
    cds: CdsClient, keys: dict[str, SigningKey], which: str
) -> None:
    token = _sign(keys[which])
    assert cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_epic_style_sub_nbf_aud_array_and_skew_are_accepted(
    cds: CdsClient, es_key: SigningKey
) -> None:
    now = time.time()
    token = _sign(
        es_key,
        aud=[BASE + DISCOVERY, "https://other.example"],  # type: ignore[arg-type]
        now=now + 30,  # iat 30 s ahead: within the 60 s skew
        extra_claims={"sub": "epic-client-id", "nbf": int(now) - 300},
    )
    assert cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_keys_from_jwks_url_with_refresh_on_unknown_kid(
    make_cds_client: Any, jwks_server: JwksServer
) -> None:
    old = generate_signing_key("ES384", kid="old")
    new = generate_signing_key("ES384", kid="new")
    jwks_server.sets["/jwks.json"] = {"keys": [old.as_dict(private=False)]}
    entry = {"iss": EHR_ISS, "jwks_url": jwks_server.url + "/jwks.json", "fhir_servers": []}
    cds = make_cds_client(clients=[entry], cds_hooks={"jwks_min_refresh_s": 0})
    ok = cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {_sign(old)}"})
    assert ok.status_code == 200
    cached = cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {_sign(old)}"})
    assert cached.status_code == 200
    assert len(jwks_server.hits) == 1  # second call served from the cache
    jwks_server.sets["/jwks.json"] = {"keys": [new.as_dict(private=False)]}  # key rotation
    rotated = cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {_sign(new)}"})
    assert rotated.status_code == 200
    assert len(jwks_server.hits) == 2


def test_jku_on_the_allowlist_is_used(make_cds_client: Any, jwks_server: JwksServer) -> None:
    key = generate_signing_key("RS384", kid="jku-key")
    jwks_server.sets["/ehr/jwks"] = {"keys": [key.as_dict(private=False)]}
    jku = jwks_server.url + "/ehr/jwks"
    cds = make_cds_client(clients=[{"iss": EHR_ISS, "jku_allowlist": [jku]}])
    good = _sign(key, extra_header={"jku": jku})
    assert cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {good}"}).status_code == 200
    prefix = _sign(key, extra_header={"jku": jku + "/../other"})
    assert cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {prefix}"}).status_code == 401
    no_jku = _sign(key)
    assert cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {no_jku}"}).status_code == 401
    assert jwks_server.hits == ["/ehr/jwks"]  # the off-list URL was never fetched


def test_unreachable_jwks_url_is_a_401_not_an_error(make_cds_client: Any) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    entry = {"iss": EHR_ISS, "jwks_url": f"http://127.0.0.1:{port}/jwks.json"}
    cds = make_cds_client(clients=[entry])
    key = generate_signing_key("ES384", kid="k")
    response = cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {_sign(key)}"})
    assert response.status_code == 401
    assert response.content == b""
    assert cds.audit_rows("auth.rejected")[-1].details["reason"].startswith("key set unavailable")


def test_jwks_cache_control_no_store_is_honoured(
    make_cds_client: Any, jwks_server: JwksServer
) -> None:
    key = generate_signing_key("ES384", kid="k1")
    jwks_server.sets["/jwks.json"] = {"keys": [key.as_dict(private=False)]}
    jwks_server.cache_control = "no-store"
    entry = {"iss": EHR_ISS, "jwks_url": jwks_server.url + "/jwks.json"}
    cds = make_cds_client(clients=[entry])
    for _ in range(2):
        ok = cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {_sign(key)}"})
        assert ok.status_code == 200
    assert len(jwks_server.hits) == 2  # no-store: fetched again, not served from the cache


def test_unknown_kid_flood_does_not_refetch_the_jwks(
    make_cds_client: Any, jwks_server: JwksServer
) -> None:
    known = generate_signing_key("ES384", kid="known")
    jwks_server.sets["/jwks.json"] = {"keys": [known.as_dict(private=False)]}
    cds = make_cds_client(clients=[{"iss": EHR_ISS, "jwks_url": jwks_server.url + "/jwks.json"}])
    for i in range(5):
        forged = generate_signing_key("ES384", kid=f"made-up-{i}")
        response = cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {_sign(forged)}"})
        assert response.status_code == 401
    assert len(jwks_server.hits) == 1  # one fetch; later unknown kids wait for min_refresh
