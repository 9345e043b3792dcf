"""encounter-discharge test service: no card unless the encounter id asks for one."""

from __future__ import annotations

from cds_service.cdshooks.registry import ResolvedRequest
from cds_service.cdshooks.schemas import CdsResponse

ID = "test-encounter-discharge"
HOOK = "encounter-discharge"
TITLE = "Test encounter-discharge service"
DESCRIPTION = "Test only: a follow-up card for encounter ids starting with 'followup'."


def handle(request: ResolvedRequest) -> CdsResponse:
    if not str(request.context["encounterId"]).startswith("followup"):
        return CdsResponse()
    return CdsResponse.model_validate(
        {
            "cards": [
                {
                    "summary": "Test: schedule a follow-up before discharge",
                    "indicator": "info",
                    "source": {"label": "OncoCDS test"},
                    "selectionBehavior": "at-most-one",
                    "suggestions": [
                        {
                            "label": "Create a follow-up task",
                            "actions": [
                                {
                                    "type": "create",
                                    "description": "Create a Task",
                                    "resource": {
                                        "resourceType": "Task",
                                        "status": "draft",
                                        "intent": "proposal",
                                        "for": {"reference": f"Patient/{request.patient_id}"},
                                    },
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )
