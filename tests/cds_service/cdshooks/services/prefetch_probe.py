"""patient-view test service that records what prefetch resolution handed it (tests read LAST)."""

from __future__ import annotations

from cds_service.cdshooks.registry import ResolvedRequest
from cds_service.cdshooks.schemas import CdsResponse

ID = "test-prefetch-probe"
HOOK = "patient-view"
TITLE = "Prefetch probe"
DESCRIPTION = "Test only: records the resolved prefetch."
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&_count=2",
    "practitioner": "Practitioner/{{userPractitionerId}}",
}
REQUIRED_PREFETCH = frozenset({"patient", "observations"})

LAST: list[ResolvedRequest] = []


def handle(request: ResolvedRequest) -> CdsResponse:
    LAST.append(request)
    return CdsResponse()
