"""patient-view test service: one info card built from the prefetched Patient."""

from __future__ import annotations

from cds_service.cdshooks.registry import ResolvedRequest
from cds_service.cdshooks.schemas import CdsResponse

ID = "test-patient-view"
HOOK = "patient-view"
TITLE = "Test patient-view service"
DESCRIPTION = "Test only: says which patient it saw and links to a SMART app."
PREFETCH = {"patient": "Patient/{{context.patientId}}"}
USAGE_REQUIREMENTS = "Test only."


def handle(request: ResolvedRequest) -> CdsResponse:
    patient = request.prefetch.get("patient")
    seen = patient.get("id") if isinstance(patient, dict) else "none"
    return CdsResponse.model_validate(
        {
            "cards": [
                {
                    "summary": f"Test card for patient {seen}",
                    "detail": "A *test* card in GitHub Flavored Markdown.",
                    "indicator": "info",
                    "source": {
                        "label": "OncoCDS test",
                        "url": "https://oncocds.example.org/test",
                        "topic": {
                            "system": "urn:oncocds:card-kind",
                            "code": "test-info",
                            "display": "Test information",
                        },
                    },
                    "links": [
                        {
                            "label": "Open the report app",
                            "url": "https://apps.example.org/launch",
                            "type": "smart",
                            "appContext": f"patient={seen}",
                        },
                        {
                            "label": "About this test",
                            "url": "https://oncocds.example.org/about",
                            "type": "absolute",
                        },
                    ],
                }
            ]
        }
    )
