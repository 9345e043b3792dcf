"""Per-app objects of the compliance feature, created on first use and kept on ``app.state``.

Created lazily so the feature plugs into ``create_app`` through ``_ROUTERS`` alone; periodic
checkpoints are the ``audit.seal`` job (``compliance/jobs.py``).
"""

from __future__ import annotations

import threading
from typing import Any

from cds_service.audit.signing import CheckpointSigner, Keyring, keyring_for, signer_for
from cds_service.compliance.auth import ComplianceAuthenticator, _authenticator
from cds_service.settings import Settings

_LOCK = threading.Lock()


def _state(app: Any) -> Any:
    return app.state


def signer(app: Any) -> CheckpointSigner:
    """The checkpoint signer (development creates the key on first use)."""
    state = _state(app)
    with _LOCK:
        if getattr(state, "audit_signer", None) is None:
            settings: Settings = state.settings
            state.audit_signer = signer_for(
                settings.audit.signing_key_path, development=not settings.is_production
            )
        result: CheckpointSigner = state.audit_signer
    return result


def keyring(app: Any) -> Keyring:
    state = _state(app)
    current = signer(app)
    with _LOCK:
        if getattr(state, "audit_keyring", None) is None:
            settings: Settings = state.settings
            state.audit_keyring = keyring_for(current, settings.audit.trusted_public_keys)
        result: Keyring = state.audit_keyring
    return result


def authenticator(app: Any) -> ComplianceAuthenticator:
    """The bearer-token validator (tests replace it to inject a JWKS transport)."""
    with _LOCK:
        return _authenticator(app)
