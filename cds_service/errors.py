"""The service's exception tree. Only ``cds_service`` maps errors to HTTP.

::

    OncoCDSError                      base; carries ``status_code`` and an IssueType ``code``
    ├── InsecureSettingsError         settings refused outside development (not an HTTP error)
    ├── BadRequestError        400    malformed input (invalid)
    ├── AuthenticationError    401    rendered as a *bare* 401, no body (CDS Hooks best practice)
    │   └── CredentialError           a credential was refused; ``reason`` is for the audit trail
    │       ├── JwtRejectedError      a CDS client JWT (``security/jwt.py``)
    │       ├── JwksError             a client's JWK Set could not be had (``security/jwks.py``)
    │       └── TokenRejectedError    a staff bearer token (``compliance/auth.py``)
    ├── ForbiddenError         403    authenticated but not allowed (forbidden)
    ├── NotFoundError          404    unknown resource or service (not-found)
    ├── ConflictError          409    state conflict (conflict)
    ├── PreconditionFailedError 412   required prefetch data unobtainable (CDS Hooks 2.0 §Prefetch)
    ├── PayloadTooLargeError   413    body over ONCOCDS_MAX_BODY_BYTES (too-costly)
    ├── UpstreamError          502    a FHIR server or other peer failed (transient)
    └── DatabaseError          503    the database refused or is unreachable (transient)

Every HTTP-facing error is rendered as a FHIR OperationOutcome (see ``cds_service.api.errors``);
messages must never contain PHI or tokens: they go to clients.
"""

from __future__ import annotations


class OncoCDSError(Exception):
    """Base class of every error the service raises on purpose."""

    status_code: int = 500
    code: str = "exception"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InsecureSettingsError(OncoCDSError):
    """Settings that must not be used outside development."""

    code = "security"


class BadRequestError(OncoCDSError):
    status_code = 400
    code = "invalid"


class AuthenticationError(OncoCDSError):
    """Rendered as a bare 401: the reason goes to the audit trail, never to the client."""

    status_code = 401
    code = "login"


class CredentialError(AuthenticationError):
    """A credential (client JWT, its JWK Set, a staff token) was refused.

    ``reason`` says why, for the audit trail only; never sent to the client (a bare 401).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ForbiddenError(OncoCDSError):
    status_code = 403
    code = "forbidden"


class NotFoundError(OncoCDSError):
    status_code = 404
    code = "not-found"


class ConflictError(OncoCDSError):
    status_code = 409
    code = "conflict"


class PreconditionFailedError(OncoCDSError):
    status_code = 412
    code = "incomplete"


class PayloadTooLargeError(OncoCDSError):
    status_code = 413
    code = "too-costly"


class UpstreamError(OncoCDSError):
    status_code = 502
    code = "transient"


class DatabaseError(OncoCDSError):
    status_code = 503
    code = "transient"
