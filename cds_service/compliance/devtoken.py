"""The development OpenID Connect issuer: a local signing key and token minting.

Development only (production refuses to trust it: ``ComplianceAuthenticator`` uses the dev key
only when no issuer is configured and the environment is development). The private key is an
EC P-256 JWK kept in ``ONCOCDS_COMPLIANCE__DEV_KEY_PATH`` (default ``./var/``), created on first
use with mode 0600. Callable from anywhere (the lead aliases ``oncocds dev-token``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Final

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from cds_service.errors import InsecureSettingsError
from cds_service.settings import Settings

DEV_ISSUER: Final = "urn:oncocds:dev-oidc"
DEV_ALGORITHM: Final = "ES256"

#: Role presets: what each ``--role`` puts in the token's roles claim.
#: Compliance staff also read the HL7 inbox metadata and the write-back queue (issue 5: "the
#: same views ... for the compliance and integration staff") and the feedback summary; only
#: integration staff replay HL7 messages.
ROLE_PRESETS: Final[dict[str, list[str]]] = {
    "compliance": ["audit.read", "audit.export", "integration.read", "feedback.read"],
    "compliance-read": ["audit.read"],
    "integration": ["integration.read", "integration.replay"],
    "governance": ["feedback.read"],
    "clinician": ["clinician"],
    "none": [],
}


def _load_or_create_key(path: Path) -> ECKey:
    if not path.exists():
        key = ECKey.generate_key("P-256", auto_kid=True, private=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created concurrently; read theirs below
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(key.as_dict(private=True), handle)
            return key
    return ECKey.import_key(json.loads(path.read_text(encoding="utf-8")))


def dev_issuer(settings: Settings) -> str:
    return settings.compliance.oidc_issuer or DEV_ISSUER


def dev_key(settings: Settings) -> ECKey:
    """The dev issuer's private key (created on first use).

    Raises:
        InsecureSettingsError: in production.
    """
    if settings.is_production:
        raise InsecureSettingsError("the development OIDC issuer is disabled in production")
    return _load_or_create_key(settings.compliance.dev_key_path)


def dev_public_keyset(settings: Settings) -> KeySet:
    key = dev_key(settings)
    return KeySet.import_key_set({"keys": [key.as_dict(private=False)]})


def mint_dev_token(
    settings: Settings,
    *,
    role: str = "compliance",
    subject: str | None = None,
    ttl_seconds: int = 900,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """A signed bearer token from the development issuer.

    Args:
        settings: where the dev key lives and which audience to use.
        role: a key of :data:`ROLE_PRESETS`.
        subject: the ``sub`` claim (default ``dev-<role>``).
        ttl_seconds: lifetime.
        extra_claims: merged over the defaults (tests use this to forge bad tokens).

    Raises:
        InsecureSettingsError: in production.
        ValueError: unknown role.
    """
    if role not in ROLE_PRESETS:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLE_PRESETS)}")
    key = dev_key(settings)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": dev_issuer(settings),
        "sub": subject or f"dev-{role}",
        "aud": settings.compliance.audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        "azp": "oncocds-dev-console",
        "preferred_username": subject or f"dev-{role}",
        settings.compliance.roles_claim: list(ROLE_PRESETS[role]),
    }
    claims.update(extra_claims or {})
    header = {"alg": DEV_ALGORITHM, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[DEV_ALGORITHM])
