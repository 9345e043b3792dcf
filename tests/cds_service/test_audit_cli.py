"""``oncocds audit …`` and ``oncocds compliance dev-token`` through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from cds_service.audit import AuditTrail
from cds_service.db.engine import make_engine

ONCOCDS = str(Path(sys.executable).parent / "oncocds")


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ONCOCDS_DATABASE_URL": database_url,
        "ONCOCDS_AUDIT__SIGNING_KEY_PATH": str(tmp_path / "keys" / "audit.pem"),
        "ONCOCDS_AUDIT__ARCHIVE_DIR": str(tmp_path / "archive"),
        "ONCOCDS_COMPLIANCE__DEV_KEY_PATH": str(tmp_path / "keys" / "dev.json"),
    }


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ONCOCDS, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _fill(database_url: str, n: int, *, recorded: datetime | None = None) -> list[str]:
    engine = make_engine(database_url)
    trail = AuditTrail(engine, source_observer="cli-test")
    ids = [
        trail.record(
            action="R",
            event_type="cds-hooks.call",
            agent_who="ehr",
            patient_id="Patient/p1",
            recorded=recorded,
        ).id
        for _ in range(n)
    ]
    engine.dispose()
    return ids


def test_keygen_checkpoint_verify_prove_check(
    env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    keygen = _run(env, "audit", "keygen", "--public-out", str(tmp_path / "pub.pem"))
    assert keygen.returncode == 0, keygen.stderr
    again = _run(env, "audit", "keygen")
    assert again.returncode == 2
    assert again.stderr.strip().startswith("oncocds: error:")
    assert "refusing to overwrite" in again.stderr
    ids = _fill(database_url, 5)
    sealed = _run(env, "audit", "checkpoint")
    assert "checkpoint 1: seq 1..5 (tree size 5)" in sealed.stdout
    verify = _run(env, "audit", "verify")
    assert verify.returncode == 0
    assert "5 records, 1 signed checkpoints" in verify.stdout
    proof_file = tmp_path / "proof.json"
    assert _run(env, "audit", "prove", ids[2], "--out", str(proof_file)).returncode == 0
    # check-proof needs no database: run it with an unreachable one.
    offline = {**env, "ONCOCDS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    pub = str(tmp_path / "pub.pem")
    ok = _run(offline, "audit", "check-proof", str(proof_file), "--public-key", pub)
    assert ok.returncode == 0, ok.stderr
    assert f"record {ids[2]} (seq 3)" in ok.stdout
    proof = json.loads(proof_file.read_text())
    proof["record"]["agent_who"] = "forged"
    proof_file.write_text(json.dumps(proof))
    bad = _run(offline, "audit", "check-proof", str(proof_file))
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "oncocds: error: the record's content does not match its record hash"
    )


def test_verify_names_the_first_broken_record_and_exits_1(
    env: dict[str, str], database_url: str
) -> None:
    ids = _fill(database_url, 6)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE audit_records SET patient_id = 'Patient/x' WHERE seq = 4"))
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_records ENABLE TRIGGER USER"))
    engine.dispose()
    result = _run(env, "audit", "verify", "--from", "2", "--to", "5")
    assert result.returncode == 1
    assert f"BROKEN at seq 4 (record {ids[3]})" in result.stderr
    assert "altered" in result.stderr
    assert _run(env, "audit", "verify", "--to", "3").returncode == 0


def test_archive_refuses_inside_retention_then_archives(
    env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    _fill(database_url, 4, recorded=datetime.now(UTC) - timedelta(days=3000))
    _fill(database_url, 2)
    inside = _run(env, "audit", "archive", "--before", datetime.now(UTC).strftime("%Y-%m-%d"))
    assert inside.returncode == 2
    assert "inside the 6-year retention window" in inside.stderr
    bad_date = _run(env, "audit", "archive", "--before", "yesterday")
    assert bad_date.returncode == 2
    assert "YYYY-MM-DD" in bad_date.stderr
    # Records go only in whole checkpoints: here one checkpoint seals old and recent records
    # together (seq 1..6), so nothing may be archived yet, and the run says so.
    done = _run(env, "audit", "archive")
    assert done.returncode == 0, done.stderr
    assert "nothing to archive" in done.stdout


def test_archive_cli_round_trip(env: dict[str, str], database_url: str, tmp_path: Path) -> None:
    env_small = {**env, "ONCOCDS_AUDIT__CHECKPOINT_MAX_RECORDS": "4"}
    _fill(database_url, 4, recorded=datetime.now(UTC) - timedelta(days=3000))
    _fill(database_url, 3)
    done = _run(env_small, "audit", "archive")
    assert done.returncode == 0, done.stderr
    assert "archived seq 1..4 (4 records, 1 checkpoints)" in done.stdout
    assert "remaining trail verifies from seq 5" in done.stdout
    (archive_file,) = (tmp_path / "archive").glob("audit-archive-1-4-*.jsonl")
    pub = tmp_path / "pub.pem"
    pub.write_text(_run(env, "audit", "public-key").stdout)
    checked = _run(env, "audit", "verify-archive", str(archive_file), "--public-key", str(pub))
    assert checked.returncode == 0, checked.stderr
    assert "seq 1..4, 4 records, 1 signed checkpoints" in checked.stdout
    assert _run(env, "audit", "verify").returncode == 0


def test_dev_token_roles(env: dict[str, str]) -> None:
    from joserfc import jwt

    result = _run(env, "compliance", "dev-token", "--role", "compliance")
    assert result.returncode == 0
    claims = jwt.decode(result.stdout.strip(), lambda _: _dev_key(env), algorithms=["ES256"]).claims
    # Compliance staff also read the HL7/write-back queues and the feedback summary (README,
    # "Who may call what"); replaying HL7 messages is for integration staff only.
    assert claims["roles"] == ["audit.read", "audit.export", "integration.read", "feedback.read"]
    assert claims["exp"] - claims["iat"] == 900
    integration = _run(env, "dev-token", "--role", "integration", "--lifetime", "600")
    assert integration.returncode == 0, integration.stderr
    claims = jwt.decode(
        integration.stdout.strip(), lambda _: _dev_key(env), algorithms=["ES256"]
    ).claims
    assert claims["roles"] == ["integration.read", "integration.replay"]
    assert claims["exp"] - claims["iat"] == 600
    refused = _run({**env, "ONCOCDS_ENVIRONMENT": "production"}, "compliance", "dev-token")
    assert refused.returncode == 2
    assert "disabled in production" in refused.stderr


def _dev_key(env: dict[str, str]) -> object:
    from joserfc.jwk import ECKey

    return ECKey.import_key(json.loads(Path(env["ONCOCDS_COMPLIANCE__DEV_KEY_PATH"]).read_text()))
