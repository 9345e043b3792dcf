"""Errors of the imaging fetchers (DICOMweb, FHIR Binary and attachments, image decoding).

::

    ImagingError                     base; ``reason`` (PHI-free), ``transient`` (a retry may help)
    ├── ImageReferenceError          the reference itself is unusable (bad UID, no URL or data)
    ├── ImageNotAllowedError         SSRF guard: endpoint off the allowlist, a redirect off it,
    │                                a forbidden address (link-local / cloud metadata)
    ├── ImageTooLargeError           byte limit (declared or while streaming) or pixel limit
    │                                (decompression-bomb guard), checked before decoding
    ├── UnsupportedImageError        content type, transfer syntax, photometric interpretation or
    │                                bit depth we do not decode
    ├── CorruptImageError            truncated or undecodable data (DICOM, PNG, JPEG, multipart)
    ├── ImageSourceRefusedError      the server refused: 401/403 (credential) or 404 (not found)
    └── ImageSourceUnavailableError  transient: connect error, connection cut, 429, 5xx
        └── ImageFetchTimeoutError   per-request timeout or the overall deadline passed

How the service maps them (integrations never speak HTTP status to clients; issue #15 §7):
too large → 413 / job error "image too large"; unsupported → 415 OperationOutcome; corrupt and
unavailable → job failed with the reason, retried with backoff (``transient`` says whether the
same request may succeed), listed and replayable; not allowed → refused and audited; refused
→ job failed (credential or reference), not retried automatically.

``reason`` is built from fixed phrases, counts, limits, transfer-syntax UIDs and the endpoint's
host only: never a URL path or query (they carry study UIDs and search parameters), a token, a
response body or a patient detail. ``str(error)`` is the reason.
"""

from __future__ import annotations

from integrations.errors import IntegrationError


class ImagingError(IntegrationError):
    """Base of the imaging errors. ``reason`` is safe to log, store and show."""

    transient: bool = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageReferenceError(ImagingError):
    """The reference cannot be fetched as given (malformed UID, attachment without data or url)."""


class ImageNotAllowedError(ImagingError):
    """The SSRF guard refused the endpoint, a redirect target or the address it resolves to."""


class ImageTooLargeError(ImagingError):
    """More bytes or pixels than the configured limits allow; nothing was decoded."""


class UnsupportedImageError(ImagingError):
    """A content type, transfer syntax or pixel format outside the supported list."""


class CorruptImageError(ImagingError):
    """Truncated or undecodable image data."""


class ImageSourceRefusedError(ImagingError):
    """The server answered 401, 403, 404 or another client error: retrying will not help."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class ImageSourceUnavailableError(ImagingError):
    """The server could not be reached or failed (connection, 429, 5xx): retry later."""

    transient = True

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class ImageFetchTimeoutError(ImageSourceUnavailableError):
    """A request exceeded its connect/read timeout, or the whole fetch its deadline."""
