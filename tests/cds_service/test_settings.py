"""Settings: environment prefix, defaults, and refusal of insecure production settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.errors import InsecureSettingsError
from cds_service.settings import Settings


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCOCDS_PORT", "9191")
    monkeypatch.setenv("ONCOCDS_DATABASE_URL", "postgresql://u@db.example/oncocds")
    monkeypatch.setenv("ONCOCDS_MAX_BODY_BYTES", "2048")
    settings = Settings()
    assert settings.port == 9191
    assert settings.database_url == "postgresql+psycopg://u@db.example/oncocds"
    assert settings.max_body_bytes == 2048


def test_development_defaults_are_local(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ONCOCDS_DATABASE_URL", "ONCOCDS_PUBLIC_BASE_URL", "ONCOCDS_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.environment == "development"
    assert settings.is_sqlite
    assert settings.max_body_bytes == 5 * 1024 * 1024
    assert settings.base_url == "http://127.0.0.1:8080"
    settings.check_secure()  # development never refuses


def test_production_refuses_insecure_settings() -> None:
    settings = Settings(
        environment="production",
        public_base_url="http://cds.example.org",
        database_url="sqlite:///x.db",
        clients_file=None,
    )
    with pytest.raises(InsecureSettingsError) as info:
        settings.check_secure()
    message = info.value.message
    assert "must be https://" in message
    assert "ONCOCDS_CLIENTS_FILE is not set" in message
    assert "production needs PostgreSQL" in message


def test_production_accepts_secure_settings(tmp_path: Path) -> None:
    clients = tmp_path / "clients.toml"
    clients.write_text("[[clients]]\n")
    signing_key = tmp_path / "audit-key.pem"
    signing_key.write_text("placeholder: only its presence is checked here\n")
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    settings = Settings(
        environment="production",
        public_base_url="https://cds.example.org/",
        database_url="postgresql://oncocds@db/oncocds",
        clients_file=clients,
        reports={"secret": "a-long-random-report-link-secret"},
        audit={"signing_key_path": signing_key},
        compliance={"oidc_issuer": "https://idp.example.org", "jwks_file": jwks},
    )
    settings.check_secure()
    assert settings.base_url == "https://cds.example.org"


def test_production_refuses_unsigned_report_links(tmp_path: Path) -> None:
    clients = tmp_path / "clients.toml"
    clients.write_text("[[clients]]\n")
    settings = Settings(
        environment="production",
        public_base_url="https://cds.example.org/",
        database_url="postgresql://oncocds@db/oncocds",
        clients_file=clients,
    )
    assert any("ONCOCDS_REPORTS__SECRET" in r for r in settings.insecure_reasons())


def test_writeback_section_reads_nested_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCOCDS_WRITEBACK__FHIR_BASE_URL", "https://ehr.example.org/fhir")
    monkeypatch.setenv("ONCOCDS_WRITEBACK__ALG", "RS384")
    settings = Settings()
    assert settings.writeback.fhir_base_url == "https://ehr.example.org/fhir"
    assert settings.writeback.alg == "RS384"
    assert not settings.writeback.enabled
