"""Service configuration: one pydantic-settings class, prefix ``ONCOCDS_``, nested with ``__``.

There is no module-level singleton: the CLI builds ``Settings()`` from the environment and passes
it to :func:`cds_service.app.create_app`; tests build it with explicit values.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cds_service.errors import InsecureSettingsError

DEFAULT_SQLITE_URL = "sqlite:///./var/oncocds.db"
MIB = 1024 * 1024


def normalise_database_url(url: str) -> str:
    """Pin PostgreSQL URLs to the psycopg 3 driver (the only one installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Hl7Settings(BaseModel):
    """HL7 v2 listener and worker (``ONCOCDS_HL7__*``); host and port are ``ONCOCDS_MLLP_*``."""

    model_config = ConfigDict(frozen=True)

    max_frame_bytes: int = Field(default=4 * MIB, ge=1024, le=256 * MIB)
    idle_timeout_seconds: float = Field(default=600.0, gt=0)
    max_connections: int = Field(default=64, ge=1)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: Python codec when MSH-18 is empty, then the fallbacks in order.
    default_charset: str = "utf-8"
    fallback_charsets: tuple[str, ...] = ()
    #: What to do with message types OncoCDS does not process: store them as "not-processed"
    #: and answer AA, or refuse them with AR (HL7 table 0357 code 200).
    other_types: Literal["store", "refuse"] = "store"
    #: Run the processing worker inside the listener process.
    worker_in_process: bool = True
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    worker_batch: int = Field(default=10, ge=1, le=1000)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    #: A claimed message whose worker died is claimed again after this long.
    lease_seconds: float = Field(default=300.0, gt=0)
    responder_application: str = "ONCOCDS"
    responder_facility: str = ""


class Settings(BaseSettings):
    """Everything an OncoCDS process needs, read from ``ONCOCDS_*`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="ONCOCDS_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    environment: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_SQLITE_URL
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_base_url: str | None = Field(
        default=None,
        description="URL clients use to reach this service; JWT 'aud' checks are built on it. "
        "Defaults to http://HOST:PORT in development.",
    )
    clients_file: Path | None = Field(
        default=None, description="JSON or TOML file listing the trusted CDS clients."
    )
    max_body_bytes: int = Field(default=5 * MIB, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    instance_id: str = Field(
        default_factory=socket.gethostname,
        description="Name of this instance, recorded as the audit source observer.",
    )
    db_pool_size: int = Field(default=10, ge=1)
    #: HL7 v2 MLLP listener address (exactly ONCOCDS_MLLP_HOST / ONCOCDS_MLLP_PORT, issue #5).
    mllp_host: str = "127.0.0.1"
    mllp_port: int = Field(default=2575, ge=0, le=65535)
    hl7: Hl7Settings = Hl7Settings()

    @field_validator("database_url")
    @classmethod
    def _normalise_db(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def base_url(self) -> str:
        """The public base URL without a trailing slash."""
        if self.public_base_url:
            return self.public_base_url
        return f"http://{self.host}:{self.port}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def insecure_reasons(self) -> list[str]:
        """Why these settings must not run in production (empty when they may)."""
        reasons: list[str] = []
        if not self.public_base_url:
            reasons.append("ONCOCDS_PUBLIC_BASE_URL is not set")
        elif not self.public_base_url.startswith("https://"):
            reasons.append("ONCOCDS_PUBLIC_BASE_URL must be https:// (CDS Hooks 2.0 §Security)")
        if self.clients_file is None:
            reasons.append("ONCOCDS_CLIENTS_FILE is not set (no trusted CDS clients)")
        elif not self.clients_file.is_file():
            reasons.append(f"ONCOCDS_CLIENTS_FILE {self.clients_file} does not exist")
        if self.is_sqlite:
            reasons.append("ONCOCDS_DATABASE_URL is SQLite; production needs PostgreSQL")
        if (self.hl7.tls_cert_file is None) != (self.hl7.tls_key_file is None):
            reasons.append("ONCOCDS_HL7__TLS_CERT_FILE and ONCOCDS_HL7__TLS_KEY_FILE go together")
        if self.log_level == "DEBUG":
            reasons.append("ONCOCDS_LOG_LEVEL=DEBUG is not allowed in production")
        return reasons

    def check_secure(self) -> None:
        """Refuse insecure settings outside development.

        Raises:
            InsecureSettingsError: in production, naming every insecure setting.
        """
        if not self.is_production:
            return
        reasons = self.insecure_reasons()
        if reasons:
            raise InsecureSettingsError("refusing to start in production: " + "; ".join(reasons))


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the directory of a file-based SQLite URL (``make run`` on a fresh clone)."""
    prefix = "sqlite:///"
    if database_url.startswith(prefix):
        path = database_url[len(prefix) :]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
