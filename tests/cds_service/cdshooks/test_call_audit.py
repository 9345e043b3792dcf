"""What a service adds to its call's audit (``request.audit``) is written once, with the call's
own record, whether the call succeeds or the service fails afterwards."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cds_service.cdshooks.call_audit import CallAudit
from cds_service.cdshooks.registry import CdsServiceDefinition, ResolvedRequest
from cds_service.cdshooks.schemas import CdsResponse
from tests.cds_service.cdshooks.conftest import CdsClient, patient_view_body


def _service(service_id: str, *, fail: bool) -> CdsServiceDefinition:
    def handle(request: ResolvedRequest) -> CdsResponse:
        request.audit.add_event(
            {
                "action": "C",
                "event_type": "test.stored",
                "agent_who": request.client.iss,
                "patient_id": request.patient_id,
                "entities": [{"type": "Thing", "id": "t-1"}],
            }
        )
        request.audit.link("Thing", "t-1", role="report")
        if fail:
            raise RuntimeError("the service broke after storing")
        return CdsResponse.model_validate(
            {"cards": [{"summary": "ok", "indicator": "info", "source": {"label": "test"}}]}
        )

    return CdsServiceDefinition(
        id=service_id, hook="patient-view", description="audit probe", handler=handle
    )


SERVICES = [_service("stores-then-answers", fail=False), _service("stores-then-fails", fail=True)]


@pytest.mark.parametrize(
    ("service", "status", "outcome"),
    [
        ("stores-then-answers", 200, 0),
        ("stores-then-fails", 500, 8),
    ],
)
def test_the_service_s_event_and_link_go_with_the_call_record(
    make_cds_client: Callable[..., CdsClient],
    database_url: str,
    service: str,
    status: int,
    outcome: int,
) -> None:
    cds = make_cds_client(services=SERVICES, database_url=database_url)
    assert cds.call(service, patient_view_body()).status_code == status
    stored = cds.audit_rows("test.stored")
    calls = cds.audit_rows("cds-hooks.call")
    assert len(stored) == 1  # once, also when the call failed after the service stored it
    assert len(calls) == 1
    assert calls[0].outcome == outcome
    assert {"type": "Thing", "id": "t-1", "role": "report"} in calls[0].entities
    # One transaction: the service's record comes right before the call's own.
    assert stored[0].seq == calls[0].seq - 1
    assert stored[0].patient_id == calls[0].patient_id == "p1"


def test_call_audit_identifiers_and_links() -> None:
    audit = CallAudit(agent_who="https://ehr.example.org", patient_id="p1", request_id="r1")
    audit.link("Analysis", "a-1")
    audit.link("Analysis", "a-2", role="report")
    assert audit.entities == [
        {"type": "Analysis", "id": "a-1"},
        {"type": "Analysis", "id": "a-2", "role": "report"},
    ]
    assert audit.identifiers() == {
        "agent_who": "https://ehr.example.org",
        "agent_user": None,
        "tenant": None,
        "patient_id": "p1",
        "hook_instance": None,
        "request_id": "r1",
        "remote_addr": None,
    }
