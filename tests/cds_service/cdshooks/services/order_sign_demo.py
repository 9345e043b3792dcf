"""order-sign test service: cards with update/delete suggestions and a system action."""

from __future__ import annotations

from typing import Any

from cds_service.cdshooks.registry import ResolvedRequest
from cds_service.cdshooks.schemas import CdsResponse

ID = "test-order-sign"
HOOK = "order-sign"
TITLE = "Test order-sign service"
DESCRIPTION = "Test only: offers to change or cancel each draft MedicationRequest."


def handle(request: ResolvedRequest) -> CdsResponse:
    cards: list[dict[str, Any]] = []
    for entry in request.context["draftOrders"].get("entry", []):
        draft = entry.get("resource", {})
        if draft.get("resourceType") != "MedicationRequest":
            continue
        ref = f"MedicationRequest/{draft['id']}"
        changed = {**draft, "note": [{"text": "reviewed by test service"}]}
        cards.append(
            {
                "summary": f"Test: review {ref} before signing",
                "indicator": "critical",
                "source": {"label": "OncoCDS test"},
                "selectionBehavior": "any",
                "suggestions": [
                    {
                        "label": "Annotate the order",
                        "actions": [
                            {"type": "update", "description": "Add a note", "resource": changed}
                        ],
                    },
                    {
                        "label": "Cancel the order",
                        "actions": [
                            {"type": "delete", "description": "Remove it", "resourceId": ref}
                        ],
                    },
                ],
            }
        )
    return CdsResponse.model_validate(
        {
            "cards": cards,
            "systemActions": [
                {
                    "type": "update",
                    "description": "Tag the order set as checked",
                    "resource": {
                        "resourceType": "Basic",
                        "id": "checked",
                        "code": {"text": "checked"},
                    },
                }
            ],
        }
    )
