"""order-select test service: one warning card per selected order, with a suggestion."""

from __future__ import annotations

from cds_service.cdshooks.registry import ResolvedRequest
from cds_service.cdshooks.schemas import CdsResponse

ID = "test-order-select"
HOOK = "order-select"
TITLE = "Test order-select service"
DESCRIPTION = "Test only: suggests a test order for each selected draft."


def handle(request: ResolvedRequest) -> CdsResponse:
    cards = []
    for selection in request.context["selections"]:
        cards.append(
            {
                "summary": f"Test: order a companion test before {selection}",
                "indicator": "warning",
                "source": {
                    "label": "OncoCDS test",
                    "topic": {"system": "urn:oncocds:card-kind", "code": "test-order"},
                },
                "selectionBehavior": "at-most-one",
                "suggestions": [
                    {
                        "label": "Add the test order",
                        "isRecommended": True,
                        "actions": [
                            {
                                "type": "create",
                                "description": "Create a draft ServiceRequest",
                                "resource": {
                                    "resourceType": "ServiceRequest",
                                    "status": "draft",
                                    "intent": "proposal",
                                    "subject": {"reference": f"Patient/{request.patient_id}"},
                                },
                            }
                        ],
                    }
                ],
                "overrideReasons": [
                    {
                        "system": "urn:oncocds:override",
                        "code": "already-done",
                        "display": "Already tested",
                    },
                    {
                        "system": "urn:oncocds:override",
                        "code": "not-indicated",
                        "display": "Not indicated",
                    },
                ],
            }
        )
    return CdsResponse.model_validate({"cards": cards})
