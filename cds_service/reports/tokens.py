"""Expiring signed report links: ``/reports/{id}?t=EXPIRY.SIGNATURE``.

The token is ``HMAC-SHA256(secret, "oncocds-report|{analysis id}|{expiry}")`` (base64url, no
padding) with the expiry in Unix seconds in clear. It names no patient and carries no PHI: the
analysis id is a random UUID. The secret comes from ``ONCOCDS_REPORTS__SECRET``; in development a
random one is generated once into ``var/report-secret`` (mode 0600) so links survive restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Final

from cds_service.errors import AuthenticationError, ForbiddenError, InsecureSettingsError
from cds_service.settings import Settings

_DOMAIN: Final = "oncocds-report"
MAX_TOKEN_CHARS: Final = 128


def report_secret(settings: Settings) -> bytes:
    """The HMAC key for report links.

    Raises:
        InsecureSettingsError: production without ``ONCOCDS_REPORTS__SECRET``.
    """
    if settings.reports.secret is not None:
        return settings.reports.secret.get_secret_value().encode()
    if settings.is_production:
        raise InsecureSettingsError("ONCOCDS_REPORTS__SECRET is required in production")
    path: Path = settings.reports.secret_file
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    # Read again only when the file changed (every card with a report link asks).
    stamp = path.stat().st_mtime_ns
    known = _dev_secrets.get(path)
    if known is None or known[0] != stamp:
        known = _dev_secrets[path] = (stamp, path.read_text().strip().encode())
    return known[1]


#: Development secret files by path: (mtime, secret).
_dev_secrets: dict[Path, tuple[int, bytes]] = {}


def _signature(secret: bytes, analysis_id: str, expiry: int) -> str:
    mac = hmac.new(secret, f"{_DOMAIN}|{analysis_id}|{expiry}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def sign_report_token(
    secret: bytes, analysis_id: str, *, ttl_seconds: int, now: float | None = None
) -> str:
    expiry = int((time.time() if now is None else now) + ttl_seconds)
    return f"{expiry}.{_signature(secret, analysis_id, expiry)}"


def verify_report_token(
    secret: bytes, analysis_id: str, token: str | None, *, now: float | None = None
) -> int:
    """Check a report token; return its expiry.

    Raises:
        AuthenticationError: no token, or malformed (401).
        ForbiddenError: wrong signature (another analysis, forged) or expired (403).
    """
    if not token or len(token) > MAX_TOKEN_CHARS or "." not in token:
        raise AuthenticationError("report link token missing or malformed")
    expiry_text, signature = token.split(".", 1)
    if not expiry_text.isdigit():
        raise AuthenticationError("report link token malformed")
    expiry = int(expiry_text)
    expected = _signature(secret, analysis_id, expiry)
    if not hmac.compare_digest(expected, signature):
        raise ForbiddenError("report link is not valid for this report")
    if expiry <= (time.time() if now is None else now):
        raise ForbiddenError("report link has expired; open the report again from the EHR")
    return expiry


def report_link(settings: Settings, analysis_id: str, *, now: float | None = None) -> str:
    """The absolute URL of an analysis's report page with a fresh signed token.

    This is what CDS cards link to (``links[].url``, type ``absolute``).
    """
    token = sign_report_token(
        report_secret(settings),
        analysis_id,
        ttl_seconds=settings.reports.token_ttl_seconds,
        now=now,
    )
    return f"{settings.base_url}/reports/{analysis_id}?t={token}"
