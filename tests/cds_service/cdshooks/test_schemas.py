"""The card model enforces the CDS Hooks 2.0 response rules (and the 3.0 FSH invariants)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cds_service.cdshooks.prefetch import render_template
from cds_service.cdshooks.schemas import Card, CdsResponse


def _card(**overrides: Any) -> dict[str, Any]:
    card: dict[str, Any] = {"summary": "s", "indicator": "info", "source": {"label": "x"}}
    card.update(overrides)
    return card


SUGGESTION = {
    "label": "do",
    "actions": [{"type": "delete", "description": "d", "resourceId": "X/1"}],
}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"summary": "x" * 140}, "at most 139"),
        ({"summary": ""}, "summary"),
        ({"indicator": "hard-stop"}, "indicator"),
        ({"source": {}}, "label"),
        ({"suggestions": [SUGGESTION]}, "selectionBehavior is required"),
        ({"suggestions": [SUGGESTION], "selectionBehavior": "all"}, "selection"),
        (
            {
                "suggestions": [
                    {"label": "a", "isRecommended": True},
                    {"label": "b", "isRecommended": True},
                ],
                "selectionBehavior": "at-most-one",
            },
            "at most one recommended",
        ),
        ({"overrideReasons": [{"system": "s", "code": "c"}]}, "display"),
        (
            {"links": [{"label": "l", "url": "https://x", "type": "absolute", "appContext": "a"}]},
            "appContext",
        ),
        ({"links": [{"label": "l", "url": "https://x", "type": "embedded"}]}, "type"),
        ({"links": [{"label": "l", "url": "javascript:alert(1)", "type": "absolute"}]}, "url"),
        (
            {
                "suggestions": [
                    {"label": "a", "actions": [{"type": "create", "description": "d"}]}
                ],
                "selectionBehavior": "any",
            },
            "needs a resource",
        ),
        (
            {
                "suggestions": [
                    {
                        "label": "a",
                        "actions": [
                            {
                                "type": "delete",
                                "description": "d",
                                "resource": {"resourceType": "X"},
                                "resourceId": "X/1",
                            }
                        ],
                    }
                ],
                "selectionBehavior": "any",
            },
            "delete action",
        ),
        (
            {
                "suggestions": [{"label": "a", "actions": [{"type": "move", "description": "d"}]}],
                "selectionBehavior": "any",
            },
            "type",
        ),
        ({"unknownField": 1}, "xtra"),
    ],
)
def test_invalid_cards_are_refused(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Card.model_validate(_card(**overrides))


def test_summary_of_139_characters_is_fine() -> None:
    assert Card.model_validate(_card(summary="x" * 139)).summary == "x" * 139


def test_empty_optional_lists_are_omitted_not_sent_empty() -> None:
    response = CdsResponse.model_validate(
        {"cards": [_card(links=[], overrideReasons=[], suggestions=[])], "systemActions": []}
    )
    assert response.to_json() == {"cards": [_card()]}
    assert CdsResponse().to_json() == {"cards": []}


def test_tokens_are_encoded_so_context_cannot_inject_parameters() -> None:
    rendered = render_template(
        "Observation?patient={{context.patientId}}", {"patientId": "p1&_include=*"}
    )
    assert rendered == "Observation?patient=p1%26_include%3D%2A"
    assert render_template("Practitioner/{{userPractitionerId}}", {"userId": "Patient/1"}) is None
    assert (
        render_template("Practitioner/{{userPractitionerId}}", {"userId": "Practitioner/9"})
        == "Practitioner/9"
    )
    assert render_template("Encounter/{{context.encounterId}}", {"patientId": "p"}) is None
