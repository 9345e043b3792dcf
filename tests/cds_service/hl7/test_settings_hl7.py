"""HL7 settings: the exact listener variables of issue #5 and the nested section."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cds_service.settings import Settings


def test_mllp_host_and_port_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().mllp_host, Settings().mllp_port) == ("127.0.0.1", 2575)
    monkeypatch.setenv("ONCOCDS_MLLP_HOST", "0.0.0.0")
    monkeypatch.setenv("ONCOCDS_MLLP_PORT", "6661")
    monkeypatch.setenv("ONCOCDS_HL7__MAX_FRAME_BYTES", "65536")
    monkeypatch.setenv("ONCOCDS_HL7__OTHER_TYPES", "refuse")
    monkeypatch.setenv("ONCOCDS_HL7__FALLBACK_CHARSETS", '["iso8859-1"]')
    settings = Settings()
    assert (settings.mllp_host, settings.mllp_port) == ("0.0.0.0", 6661)
    assert settings.hl7.max_frame_bytes == 65536
    assert settings.hl7.other_types == "refuse"
    assert settings.hl7.fallback_charsets == ("iso8859-1",)


def test_limits_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCOCDS_HL7__MAX_FRAME_BYTES", "10")
    with pytest.raises(ValidationError):
        Settings()


def test_tls_needs_both_files() -> None:
    settings = Settings(hl7={"tls_cert_file": "/x/cert.pem"})  # type: ignore[arg-type]
    assert any("TLS" in reason for reason in settings.insecure_reasons())
