"""Exports: FHIR R4 AuditEvent Bundle (validated by fhir.resources R4B) and CSV, streamed in
keyset batches, audited, and carrying the checkpoints that seal them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from cds_service.audit import AuditTrail
from cds_service.audit.chain import chain_hash
from cds_service.audit.checkpoints import check_proof, prove
from cds_service.audit.signing import CheckpointSigner
from cds_service.compliance import state
from cds_service.compliance.service import CHECKPOINT_EXTENSION, CSV_COLUMNS
from integrations.fhir.audit_event import audit_event
from integrations.fhir.resources import AuditEvent, Bundle
from tests.cds_service.compliance.conftest import seed

API = "/api/v1/audit"
GOLDEN = Path(__file__).resolve().parents[2] / "data" / "compliance" / "audit_event_golden.json"


def _exports(trail: AuditTrail) -> list[dict[str, Any]]:
    with trail.engine.connect() as conn:
        return [r for r in trail.iter_rows(conn) if r["event_type"] == "audit.export"]


def test_fhir_bundle_validates_is_balp_shaped_and_carries_its_checkpoint(
    cclient: TestClient, auth: dict[str, str], trail: AuditTrail, capp: Any
) -> None:
    ids = seed(trail)
    response = cclient.get(f"{API}/export", params={"patient": "Patient/p1"}, headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate_json(response.content)  # validates every AuditEvent
    body = response.json()
    assert body["type"] == "collection"
    events = [e["resource"] for e in body["entry"]]
    assert len(events) == 5
    assert all(e["resourceType"] == "AuditEvent" for e in events)
    assert len(bundle.entry or []) == 5

    hook = next(e for e in events if e["id"] == ids[1])
    codes = [a["type"]["coding"][0]["code"] for a in hook["agent"]]
    assert codes == ["110152", "110153", "IRCP"]  # client, server, user (BALP)
    assert [a["requestor"] for a in hook["agent"]] == [False, False, True]
    assert hook["agent"][0]["network"] == {"address": "10.1.2.3", "type": "2"}
    patient = hook["entity"][0]
    assert patient["what"]["reference"] == "Patient/p1"
    assert (patient["type"]["code"], patient["role"]["code"]) == ("1", "1")
    assert hook["outcome"] == "0"
    assert hook["action"] == "R"

    # The Bundle names the checkpoint that seals its records; its signature verifies.
    (ext,) = body["meta"]["extension"]
    assert ext["url"] == CHECKPOINT_EXTENSION
    cp = {
        e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in ext["extension"]
    }
    assert (cp["firstSeq"], cp["lastSeq"]) == ("1", "14")
    assert response.headers["X-OncoCDS-Audit-Checkpoint"] == cp["id"]
    signer = state.signer(capp)
    assert cp["keyId"] == signer.key_id

    # The export itself is audited, with the checkpoint that covers it.
    (export,) = _exports(trail)
    assert export["id"] == response.headers["X-OncoCDS-Audit-Export-Id"]
    assert export["patient_id"] == "Patient/p1"
    assert export["details"]["checkpointId"] == int(cp["id"])
    assert export["details"]["throughSeq"] == 14
    assert export["details"]["format"] == "fhir"

    # An exported record proves its inclusion in that checkpoint, offline.
    proof = json.loads(json.dumps(prove(trail.engine, ids[1], signer)))
    assert check_proof(proof, pinned_key_id=signer.key_id).checkpoint_id == int(cp["id"])


def test_empty_export_is_still_a_valid_bundle(
    cclient: TestClient, auth: dict[str, str], trail: AuditTrail
) -> None:
    seed(trail)
    response = cclient.get(f"{API}/export", params={"patient": "Patient/nobody"}, headers=auth)
    Bundle.model_validate_json(response.content)
    assert "entry" not in response.json()


def test_csv_export_streams_large_ranges_in_batches(
    cclient: TestClient, auth: dict[str, str], trail: AuditTrail, capp: Any
) -> None:
    seed(trail)
    # 2,400 more records (over two keyset batches of 1,000), written as a valid chain.
    with trail.engine.connect() as conn:
        last = list(trail.iter_rows(conn))[-1]
    prev, rows = last["record_hash"], []
    for i in range(2400):
        row = {
            **last,
            "seq": last["seq"] + 1 + i,
            "id": f"00000000-0000-4000-8000-{i:012d}",
            "agent_who": '=HYPERLINK("http://x")' if i == 0 else "bulk-client",
            "prev_hash": prev,
        }
        row["record_hash"] = chain_hash(prev, row)
        prev = row["record_hash"]
        rows.append(row)
    from cds_service.models.audit import AuditRecord

    with trail.engine.begin() as conn:
        conn.execute(insert(AuditRecord), rows)
    response = cclient.get(f"{API}/export", params={"format": "csv"}, headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert tuple(table[0].keys()) == CSV_COLUMNS
    assert len(table) == 14 + 2400
    assert [int(r["seq"]) for r in table] == list(range(1, 2415))
    assert {r["checkpoint_id"] for r in table} == {response.headers["X-OncoCDS-Audit-Checkpoint"]}
    # OWASP CSV injection: a formula-looking cell is neutralised.
    assert table[14]["agent_who"] == '\'=HYPERLINK("http://x")'
    assert _exports(trail)[0]["details"]["format"] == "csv"
    assert capp.state.audit is trail


def test_audit_event_matches_golden_and_a_wrong_output_does_not() -> None:
    """tests/data/compliance/audit_event_golden.json was written by hand from the BALP IG."""
    golden = json.loads(GOLDEN.read_text())
    record = {
        "id": "6f1c2d3e-4b5a-4c6d-8e7f-901234567890",
        "seq": 42,
        "record_hash": "a" * 64,
        "recorded": "2026-03-01T09:00:00Z",
        "action": "R",
        "event_type": "cds-hooks.call",
        "event_subtype": "oncology-genomics",
        "outcome": 0,
        "outcome_desc": None,
        "agent_type": "client",
        "agent_who": "https://ehr.example.org",
        "agent_user": "Practitioner/dr1",
        "patient_id": "Patient/p1",
        "entities": [{"type": "Observation", "id": "obs-1"}],
        "hook_instance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "control_id": None,
        "purpose_of_use": "TREAT",
        "source_observer": "oncocds-test",
        "request_id": "req-1",
        "remote_addr": "10.1.2.3",
    }
    produced = audit_event(record)
    assert produced == golden
    AuditEvent.model_validate(golden)
    wrong = audit_event({**record, "outcome": 4})
    assert wrong != golden


def test_signer_is_created_in_development(capp: Any, tmp_path: Path) -> None:
    signer = state.signer(capp)
    assert isinstance(signer, CheckpointSigner)
    assert capp.state.settings.audit.signing_key_path.is_file()
    assert oct(capp.state.settings.audit.signing_key_path.stat().st_mode & 0o777) == "0o600"
