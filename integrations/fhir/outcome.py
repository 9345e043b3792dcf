"""OperationOutcome construction: every FHIR-facing error OncoCDS returns has this shape."""

from __future__ import annotations

from typing import Any, Literal

from integrations.fhir.resources import OperationOutcome, OperationOutcomeIssue

Severity = Literal["fatal", "error", "warning", "information"]


def operation_outcome(
    diagnostics: str,
    *,
    code: str = "processing",
    severity: Severity = "error",
    expression: list[str] | None = None,
) -> dict[str, Any]:
    """Build an R4 OperationOutcome as JSON-ready dict.

    Args:
        diagnostics: human-readable explanation (never PHI, never a stack trace).
        code: an IssueType code (http://hl7.org/fhir/issue-type), e.g. ``invalid``, ``not-found``.
        severity: IssueSeverity.
        expression: FHIRPath-like locations of the problem, if known.

    Returns:
        The resource as a JSON-compatible dict, validated by fhir.resources.
    """
    issue = OperationOutcomeIssue(
        severity=severity,
        code=code,
        diagnostics=diagnostics,
        expression=expression or None,
    )
    resource = OperationOutcome(issue=[issue])
    result: dict[str, Any] = resource.model_dump(mode="json", exclude_none=True)
    return result
