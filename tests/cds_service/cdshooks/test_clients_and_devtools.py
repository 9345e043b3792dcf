"""Trusted-clients file (JSON and TOML), and the development client: ``oncocds dev-setup`` /
``oncocds dev-token`` work in development and are refused in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.errors import InsecureSettingsError
from cds_service.security.clients import (
    ClientsFileError,
    load_clients_file,
    load_trusted_clients,
)
from cds_service.settings import CdsHooksSettings
from tests.conftest import secure_production_settings

ONCOCDS = str(Path(sys.executable).parent / "oncocds")


def _run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ONCOCDS_")}
    return subprocess.run(
        [ONCOCDS, *args],
        cwd=cwd,
        env={**clean, "ONCOCDS_PUBLIC_BASE_URL": "http://testserver", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_toml_clients_file(tmp_path: Path) -> None:
    path = tmp_path / "clients.toml"
    path.write_text(
        """
[[clients]]
iss = "https://ehr.example.org"
jwks_url = "https://ehr.example.org/jwks.json"
jku_allowlist = ["https://ehr.example.org/jwks2.json"]
fhir_servers = ["https://fhir.example.org/r4/"]
tenant = "hospital-a"
algorithms = ["RS384"]
"""
    )
    registry = load_clients_file(path, default_algorithms=["ES384", "RS384"])
    client = registry.get("https://ehr.example.org")
    assert client is not None
    assert client.algorithms == frozenset({"RS384"})
    assert client.tenant == "hospital-a"
    assert client.allows_fhir_server("https://fhir.example.org/r4")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"iss": "a", "jwks_url": "https://x/j", "algorithms": ["HS256"]}, "asymmetric"),
        ({"iss": "a", "jwks_url": "https://x/j", "algorithms": ["none"]}, "asymmetric"),
        ({"iss": "a"}, "jwks_url, jwks or jku_allowlist"),
        ({"iss": "a", "jwks_url": "file:///etc/passwd"}, "http"),
        ({"iss": "a", "jwks": {"k": 1}}, "JWK Set"),
        ({"iss": "a", "jwks_url": "https://x/j", "unknown": 1}, "xtra"),
    ],
)
def test_invalid_client_entries_are_refused(
    tmp_path: Path, entry: dict[str, Any], message: str
) -> None:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"clients": [entry]}))
    with pytest.raises(ClientsFileError, match=message):
        load_clients_file(path, default_algorithms=["ES384"])


def test_dev_setup_then_dev_token_is_accepted(
    tmp_path: Path, make_settings: Any, sqlite_url: str
) -> None:
    setup = _run(tmp_path, "dev-setup")
    assert setup.returncode == 0, setup.stderr
    key_file = tmp_path / "var" / "dev-client" / "private-key.jwk.json"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    again = _run(tmp_path, "dev-setup")  # idempotent: the key is kept
    assert again.returncode == 0
    assert "ready" in again.stdout
    token = _run(tmp_path, "dev-token").stdout.strip()
    service_token = _run(tmp_path, "dev-token", "--service", "some-service").stdout.strip()
    assert token.count(".") == 2

    settings = make_settings(
        database_url=sqlite_url,
        cds_hooks=CdsHooksSettings(dev_dir=tmp_path / "var" / "dev-client"),
        clients_file=None,
    )
    with TestClient(create_app(settings, cds_services=()), raise_server_exceptions=False) as http:
        ok = http.get("/cds-services", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        # A token for another endpoint is refused here (aud is the exact endpoint URL).
        wrong = http.get("/cds-services", headers={"Authorization": f"Bearer {service_token}"})
        assert wrong.status_code == 401


def test_dev_token_role_and_analyses_targets(
    tmp_path: Path, make_settings: Any, sqlite_url: str
) -> None:
    """``--role`` mints a staff token (as ``oncocds compliance dev-token``) that opens the staff
    routes of that role only; ``--analysis ID`` a client JWT for that analysis URL only."""
    assert _run(tmp_path, "dev-setup").returncode == 0
    tokens = {
        role: _run(tmp_path, "dev-token", "--role", role).stdout.strip()
        for role in ("compliance", "integration")
    }
    legacy = _run(tmp_path, "compliance", "dev-token", "--role", "integration")
    assert legacy.returncode == 0, legacy.stderr
    analysis_token = _run(tmp_path, "dev-token", "--analysis", "a-1").stdout.strip()
    settings = make_settings(
        database_url=sqlite_url,
        cds_hooks=CdsHooksSettings(dev_dir=tmp_path / "var" / "dev-client"),
        clients_file=None,
        compliance={"dev_key_path": tmp_path / "var" / "compliance-dev-oidc.json"},
    )

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    with TestClient(create_app(settings, cds_services=()), raise_server_exceptions=False) as http:
        audit = "/api/v1/audit/verify"
        replay = "/api/v1/hl7/messages/424242/replay"
        assert http.get(audit, headers=bearer(tokens["compliance"])).status_code == 200
        assert http.get(audit, headers=bearer(tokens["integration"])).status_code == 403
        assert http.post(replay, headers=bearer(tokens["integration"])).status_code == 404
        assert http.post(replay, headers=bearer(legacy.stdout.strip())).status_code == 404
        assert http.post(replay, headers=bearer(tokens["compliance"])).status_code == 403
        # The client JWT opens its analysis URL (no such analysis: 404), and no staff route.
        assert http.get("/api/v1/analyses/a-1", headers=bearer(analysis_token)).status_code == 404
        assert http.get(audit, headers=bearer(analysis_token)).status_code == 401
        # A staff token never opens a clinical route.
        staff = bearer(tokens["compliance"])
        assert http.get("/api/v1/analyses/a-1", headers=staff).status_code == 401


def test_without_dev_setup_nobody_is_trusted(
    tmp_path: Path, make_settings: Any, sqlite_url: str
) -> None:
    settings = make_settings(
        database_url=sqlite_url, cds_hooks=CdsHooksSettings(dev_dir=tmp_path / "none")
    )
    with TestClient(create_app(settings, cds_services=())) as http:
        assert http.get("/cds-services").status_code == 401


def test_dev_commands_refuse_production(tmp_path: Path) -> None:
    for args in (("dev-setup",), ("dev-token", "--service", "x")):
        result = _run(tmp_path, *args, ONCOCDS_ENVIRONMENT="production")
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("oncocds: error:")
        assert "development only" in lines[0]
    assert not (tmp_path / "var").exists()


def test_dev_token_without_setup_is_one_line_error(tmp_path: Path) -> None:
    result = _run(tmp_path, "dev-token")
    assert result.returncode == 2
    assert result.stderr.strip() == "oncocds: error: no dev client; run `oncocds dev-setup` first"


def test_production_refuses_a_development_only_client(tmp_path: Path) -> None:
    assert _run(tmp_path, "dev-setup").returncode == 0
    settings = secure_production_settings(
        tmp_path, clients_file=tmp_path / "var" / "dev-client" / "clients.json"
    )
    # The clients check itself (create_app refuses these settings earlier for other reasons:
    # no report secret, audit key or OIDC issuer, which the merged features require).
    with pytest.raises(InsecureSettingsError, match="development-only client"):
        load_trusted_clients(settings)


def test_production_refuses_plain_http_key_or_fhir_urls(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    entry = {"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"}
    entry["fhir_servers"] = ["http://fhir.example.org/r4"]
    path.write_text(json.dumps({"clients": [entry]}))
    settings = secure_production_settings(tmp_path, clients_file=path)
    with pytest.raises(InsecureSettingsError, match="http:// key or FHIR URLs"):
        load_trusted_clients(settings)
