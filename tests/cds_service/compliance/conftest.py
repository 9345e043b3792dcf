"""Fixtures of the compliance API tests: an app with its own keys, tokens, seeded records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.audit import AuditTrail, Outcome
from cds_service.compliance.devtoken import mint_dev_token
from cds_service.settings import Settings


@pytest.fixture
def compliance_settings(
    make_settings: Callable[..., Settings], database_url: str, tmp_path: Path
) -> Settings:
    return make_settings(
        database_url=database_url,
        audit={
            "signing_key_path": tmp_path / "keys" / "audit-signing-key.pem",
            "checkpoint_interval_seconds": 0,
            "archive_dir": tmp_path / "archive",
        },
        compliance={"dev_key_path": tmp_path / "keys" / "dev-oidc.json"},
    )


@pytest.fixture
def capp(compliance_settings: Settings) -> Any:
    return create_app(compliance_settings)


@pytest.fixture
def cclient(capp: Any) -> Iterator[TestClient]:
    with TestClient(capp, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def token(compliance_settings: Settings) -> Callable[..., str]:
    def mint(role: str = "compliance", **kwargs: Any) -> str:
        return mint_dev_token(compliance_settings, role=role, **kwargs)

    return mint


@pytest.fixture
def auth(token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token()}"}


@pytest.fixture
def trail(capp: Any) -> AuditTrail:
    result: AuditTrail = capp.state.audit
    return result


def seed(trail: AuditTrail) -> list[str]:
    """A small, varied trail: two EHR clients, three patients, an HL7 message, a refusal."""
    base = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    ids = []
    for i in range(12):
        ids.append(
            trail.record(
                action="R",
                event_type="cds-hooks.call",
                event_subtype="oncology-genomics",
                agent_who="https://ehr-a.example.org" if i % 2 else "https://ehr-b.example.org",
                agent_user=f"Practitioner/dr{i % 3}",
                patient_id=f"Patient/p{i % 3}",
                entities=[{"type": "Observation", "id": f"obs-{i}"}],
                hook_instance=f"hook-{i}",
                purpose_of_use="TREAT" if i % 4 else None,
                request_id=f"req-{i}",
                remote_addr="10.1.2.3",
                recorded=base + timedelta(hours=i),
            ).id
        )
    ids.append(
        trail.record(
            action="C",
            event_type="hl7.received",
            agent_who="lab-lis",
            patient_id="Patient/p1",
            control_id="MSG00042",
            purpose_of_use="PUBHLTH",
            recorded=base + timedelta(days=2),
        ).id
    )
    ids.append(
        trail.record(
            action="E",
            event_type="auth.rejected",
            outcome=Outcome.MINOR_FAILURE,
            agent_who="https://unknown.example",
            outcome_desc="signature invalid",
            recorded=base + timedelta(days=3),
        ).id
    )
    return ids
