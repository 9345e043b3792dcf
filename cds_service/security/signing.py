"""Signing client JWTs: the development client (``oncocds dev-token``), tests and benchmarks.

A small signer on joserfc rather than authlib's ``PrivateKeyJWT``, whose defaults break CDS Hooks
(RS256, one-hour lifetime, no ``kid``, a reused ``jti``; see integration notes §3.2).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, RSAKey

SigningKey = ECKey | RSAKey


def generate_signing_key(alg: str = "ES384", *, kid: str | None = None) -> SigningKey:
    """A fresh private key for ``alg`` (ES384 → P-384, RS* → RSA 2048) with a ``kid``."""
    params: Any = {"kid": kid or uuid.uuid4().hex, "alg": alg, "use": "sig"}
    if alg.startswith("ES"):
        curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
        return ECKey.generate_key(curve, parameters=params)
    return RSAKey.generate_key(2048, parameters=params)


def public_jwks(*keys: SigningKey) -> dict[str, Any]:
    """The public JWK Set of ``keys``."""
    return {"keys": [k.as_dict(private=False) for k in keys]}


def sign_client_jwt(
    key: SigningKey,
    *,
    iss: str,
    aud: str,
    lifetime_s: int = 300,
    alg: str | None = None,
    tenant: str | None = None,
    extra_header: dict[str, Any] | None = None,
    extra_claims: dict[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """A CDS Hooks client JWT: header alg/kid/typ, claims iss/aud/exp/iat/jti (+tenant).

    ``extra_header``/``extra_claims`` are merged last; a ``None`` value drops the member.
    """
    issued = int(now if now is not None else time.time())
    algorithm = alg or str(key.as_dict().get("alg") or "ES384")
    header: dict[str, Any] = {"alg": algorithm, "typ": "JWT", "kid": key.kid}
    header.update(extra_header or {})
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": issued,
        "exp": issued + lifetime_s,
        "jti": str(uuid.uuid4()),
    }
    if tenant is not None:
        claims["tenant"] = tenant
    claims.update(extra_claims or {})
    # A None in the extras removes that member (tests build tokens that lack a claim or header).
    header = {k: v for k, v in header.items() if v is not None}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jose_jwt.encode(header, claims, key, algorithms=[algorithm])


def save_private_key(key: SigningKey, path: Path) -> None:
    """Write the private JWK readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(key.as_dict(private=True), indent=2))


def load_private_key(path: Path) -> SigningKey:
    data = json.loads(path.read_text())
    if data.get("kty") == "EC":
        return ECKey.import_key(data)
    return RSAKey.import_key(data)
