"""Errors of the integrations layer (formats and protocols).

::

    IntegrationError          base
    ├── IntakeError           input could not be read; carries every per-record problem
    ├── FhirClientError       a FHIR server call failed (status, OperationOutcome diagnostics)
    └── FhirMappingError      a domain object cannot be expressed as FHIR
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """One bad record: where (``file:line``, ``Observation/id``, ``OBX-4 2a``) and why."""

    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


class IntegrationError(Exception):
    """Base of the integrations layer's errors."""


class IntakeError(IntegrationError):
    """Raised in strict mode (or when nothing at all is readable), with every problem found."""

    def __init__(self, message: str, problems: list[RecordProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class FhirClientError(IntegrationError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class FhirMappingError(IntegrationError):
    """A domain object cannot be expressed as FHIR (e.g. a finding without its alteration)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
