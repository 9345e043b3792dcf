"""Errors of the job interface.

A handler raises :class:`PermanentJobError` for a failure no retry can cure (the job is dead at
once) and :class:`RetryableJobError` for a transient one whose reason it wants recorded; any other
exception is retried too, and only its type is recorded (its message may quote data). Both
reasons are stored in ``background_jobs.last_error`` and shown to staff: PHI-free, identifiers
and codes only.
"""

from __future__ import annotations

from cds_service.errors import BadRequestError


class JobError(Exception):
    """A handler's failure with a PHI-free ``reason`` (stored as the job's ``last_error``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermanentJobError(JobError):
    """No retry can succeed (bad input, a refused resource): the job is dead at once."""


class RetryableJobError(JobError):
    """A transient failure (a peer timed out): retried with backoff, then dead.

    ``retry_after_s``: when the handler knows when to try again (its own retry policy, a
    peer's Retry-After), the next attempt waits that long instead of the kind's backoff.
    """

    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class UnknownJobKindError(BadRequestError):
    """Enqueueing a kind no module registered (``cds_service/jobs/kinds.py``)."""


class JobPayloadError(BadRequestError):
    """A payload that is not a JSON object within the size limit."""
