"""A key set pinned in the clients file answers for the issuer's allowlisted ``jku``.

Issue 12 §7: the public CDS Hooks sandbox always names
``https://sandbox.cds-hooks.org/.well-known/jwks.json`` as ``jku``, which hospital networks
cannot be assumed to reach. With its key set pinned (``jwks``) and that ``jku`` allowlisted, the
pinned keys are used without a fetch; the ``jku`` is fetched only when nothing is pinned, or when
the ``kid`` is not in the pinned set and the ``jku`` is allowlisted. The JWK Set URLs are served
by a real HTTP server on 127.0.0.1 (``jwks_server``) that counts its hits, or name a port nobody
listens on, where any fetch fails.
"""

from __future__ import annotations

import socket
from typing import Any

from cds_service.security.signing import SigningKey, generate_signing_key, sign_client_jwt
from tests.cds_service.cdshooks.conftest import BASE, EHR_ISS, CdsClient
from tests.cds_service.cdshooks.test_jwt_attacks import JwksServer, jwks_server

__all__ = ["jwks_server"]

DISCOVERY = "/cds-services"


def _token(key: SigningKey, jku: str) -> str:
    return sign_client_jwt(key, iss=EHR_ISS, aud=BASE + DISCOVERY, extra_header={"jku": jku})


def _discover(cds: CdsClient, token: str) -> Any:
    return cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {token}"})


def _dead_url() -> str:
    """A JWK Set URL on a port nobody listens on: a fetch from it fails."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/.well-known/jwks.json"


def _pinned(keys: list[SigningKey], allowlist: list[str]) -> dict[str, Any]:
    return {
        "iss": EHR_ISS,
        "jwks": {"keys": [k.as_dict(private=False) for k in keys]},
        "jku_allowlist": allowlist,
    }


def test_pinned_key_set_answers_for_an_allowlisted_jku_without_a_fetch(
    make_cds_client: Any, jwks_server: JwksServer
) -> None:
    key = generate_signing_key("ES384", kid="sandbox-like")
    jku = jwks_server.url + "/.well-known/jwks.json"  # serves nothing: 404 if fetched
    cds = make_cds_client(clients=[_pinned([key], [jku])])
    for _ in range(2):
        assert _discover(cds, _token(key, jku)).status_code == 200
    assert jwks_server.hits == []


def test_pinned_key_set_works_when_the_jku_is_unreachable(make_cds_client: Any) -> None:
    """The sandbox case: the vendor's jku cannot be reached from here, and need not be."""
    key = generate_signing_key("ES384", kid="sandbox-like")
    jku = _dead_url()
    cds = make_cds_client(clients=[_pinned([key], [jku])])
    assert _discover(cds, _token(key, jku)).status_code == 200
    # Control: without the pinned set the same token must be fetched for, and that fails.
    unpinned = make_cds_client(clients=[{"iss": EHR_ISS, "jku_allowlist": [jku]}])
    response = _discover(unpinned, _token(key, jku))
    assert response.status_code == 401
    reason = unpinned.audit_rows("auth.rejected")[-1].details["reason"]
    assert reason.startswith("key set unavailable")


def test_pinned_key_set_does_not_open_a_jku_off_the_allowlist(
    make_cds_client: Any, jwks_server: JwksServer
) -> None:
    key = generate_signing_key("ES384", kid="sandbox-like")
    allowed = jwks_server.url + "/allowed/jwks.json"
    other = jwks_server.url + "/other/jwks.json"
    jwks_server.sets["/other/jwks.json"] = {"keys": [key.as_dict(private=False)]}
    cds = make_cds_client(clients=[_pinned([key], [allowed])])
    response = _discover(cds, _token(key, other))
    assert response.status_code == 401
    assert response.content == b""
    reason = cds.audit_rows("auth.rejected")[-1].details["reason"]
    assert reason == "jku not on the client's allowlist"
    assert jwks_server.hits == []


def test_unknown_kid_with_an_allowlisted_jku_fetches_the_jku(
    make_cds_client: Any, jwks_server: JwksServer
) -> None:
    """Key rotation: the pinned set lacks the new kid, the allowlisted jku has it."""
    pinned = generate_signing_key("ES384", kid="old")
    rotated = generate_signing_key("ES384", kid="new")
    jwks_server.sets["/jwks.json"] = {"keys": [rotated.as_dict(private=False)]}
    jku = jwks_server.url + "/jwks.json"
    cds = make_cds_client(clients=[_pinned([pinned], [jku])])
    assert _discover(cds, _token(pinned, jku)).status_code == 200
    assert jwks_server.hits == []
    assert _discover(cds, _token(rotated, jku)).status_code == 200
    assert jwks_server.hits == ["/jwks.json"]


def test_unknown_kid_in_neither_set_is_refused_after_one_fetch(
    make_cds_client: Any, jwks_server: JwksServer
) -> None:
    pinned = generate_signing_key("ES384", kid="pinned")
    jwks_server.sets["/jwks.json"] = {"keys": [pinned.as_dict(private=False)]}
    jku = jwks_server.url + "/jwks.json"
    cds = make_cds_client(clients=[_pinned([pinned], [jku])])
    for i in range(3):
        forged = generate_signing_key("ES384", kid=f"made-up-{i}")
        response = _discover(cds, _token(forged, jku))
        assert response.status_code == 401
    assert cds.audit_rows("auth.rejected")[-1].details["reason"] == "unknown kid"
    # One fetch; later unknown kids wait for the refetch limit (no request amplifier).
    assert jwks_server.hits == ["/jwks.json"]


def test_nothing_pinned_fetches_the_allowlisted_jku(
    make_cds_client: Any, jwks_server: JwksServer
) -> None:
    key = generate_signing_key("RS384", kid="remote")
    jwks_server.sets["/jwks.json"] = {"keys": [key.as_dict(private=False)]}
    jku = jwks_server.url + "/jwks.json"
    cds = make_cds_client(clients=[{"iss": EHR_ISS, "jku_allowlist": [jku]}])
    assert _discover(cds, _token(key, jku)).status_code == 200
    assert jwks_server.hits == ["/jwks.json"]


def test_a_pinned_key_of_another_issuer_is_not_used(
    make_cds_client: Any, jwks_server: JwksServer
) -> None:
    """Pinning is per issuer: a kid pinned for one client does not vouch for another's token."""
    other_key = generate_signing_key("ES384", kid="shared-kid")
    jku = jwks_server.url + "/jwks.json"
    other = {
        "iss": "https://other.example",
        "jwks": {"keys": [other_key.as_dict(private=False)]},
        "jku_allowlist": [jku],
    }
    cds = make_cds_client(clients=[other, {"iss": EHR_ISS, "jku_allowlist": [jku]}])
    response = _discover(cds, _token(other_key, jku))  # iss EHR_ISS, nothing pinned for it
    assert response.status_code == 401
    assert jwks_server.hits == ["/jwks.json"]  # fetched for EHR_ISS, which serves nothing
