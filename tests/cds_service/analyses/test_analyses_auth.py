"""The analyses API takes the trusted-client JWT (aud = the exact URL called), audits every
refusal with a bare 401, and names the client's ``iss`` as the agent of every analysis event."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds_service.models import AuditRecord
from cds_service.security.signing import SigningKey, generate_signing_key, sign_client_jwt
from cds_service.settings import Settings
from tests.cds_service.cdshooks.conftest import BASE, EHR_ISS, staff_headers

UPLOAD = "/api/v1/analyses?tumour_type=LUAD&patient=Patient/x1"


def _events(app: FastAPI, event_type: str) -> list[AuditRecord]:
    with app.state.sessionmaker() as session:
        stmt = select(AuditRecord).where(AuditRecord.event_type == event_type)
        return list(session.scalars(stmt.order_by(AuditRecord.seq)).all())


def _bearer(key: SigningKey, path: str, **kwargs: Any) -> dict[str, str]:
    kwargs.setdefault("iss", EHR_ISS)
    return {"Authorization": f"Bearer {sign_client_jwt(key, aud=BASE + path, **kwargs)}"}


def test_analysis_events_name_the_client(app: FastAPI, client: TestClient) -> None:
    created = client.post(UPLOAD, content=b"EGFR L858R\n", headers={"content-type": "text/plain"})
    assert created.status_code == 201, created.text
    assert client.get(created.headers["location"]).status_code == 200
    agents = [(r.event_type, r.agent_who) for r in _events(app, "analysis.create")]
    agents += [(r.event_type, r.agent_who) for r in _events(app, "analysis.read")]
    assert agents == [("analysis.create", EHR_ISS), ("analysis.read", EHR_ISS)]


def test_refusals_are_bare_401_and_audited(
    app: FastAPI, es_key: SigningKey, settings: Settings
) -> None:
    other_key = generate_signing_key("ES384", kid="not-trusted")
    with TestClient(app, raise_server_exceptions=False) as plain:
        refusals = {
            "missing": plain.post(UPLOAD, content=b"EGFR L858R\n"),
            # A token for another endpoint (aud is the exact URL called).
            "wrong aud": plain.post(
                UPLOAD, content=b"EGFR L858R\n", headers=_bearer(es_key, "/cds-services")
            ),
            "untrusted iss": plain.post(
                UPLOAD,
                content=b"EGFR L858R\n",
                headers=_bearer(es_key, "/api/v1/analyses", iss="https://evil.example"),
            ),
            "unknown key": plain.post(
                UPLOAD, content=b"EGFR L858R\n", headers=_bearer(other_key, "/api/v1/analyses")
            ),
            # A staff token (even with every staff permission) never opens a clinical route.
            "staff": plain.get("/api/v1/analyses/x", headers=staff_headers(settings, "compliance")),
            # Authentication comes before the body: garbage from a stranger is a 401, not a 400.
            "garbage body": plain.post("/api/v1/analyses", content=b"{nope"),
        }
        for name, response in refusals.items():
            assert response.status_code == 401, name
            assert response.content == b"", name
        rejected = _events(app, "auth.rejected")
        assert len(rejected) == len(refusals)
        assert {r.details["route"] for r in rejected} == {
            "/api/v1/analyses",
            "/api/v1/analyses/{analysis_id}",
        }
        assert _events(app, "analysis.create") == []


def test_a_token_is_used_once(app: FastAPI, es_key: SigningKey) -> None:
    headers = _bearer(es_key, "/api/v1/analyses/some-id")
    with TestClient(app, raise_server_exceptions=False) as plain:
        first = plain.get("/api/v1/analyses/some-id", headers=headers)
        replayed = plain.get("/api/v1/analyses/some-id", headers=headers)
    assert first.status_code == 404  # authenticated; no such analysis
    assert replayed.status_code == 401
