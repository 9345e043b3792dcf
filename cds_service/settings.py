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


class AuditSettings(BaseModel):
    """``ONCOCDS_AUDIT__*``: checkpoints (signed Merkle tree heads) and retention of the trail."""

    model_config = ConfigDict(frozen=True)

    signing_key_path: Path = Field(
        default=Path("var/audit-signing-key.pem"),
        description="Ed25519 private key (PKCS#8 PEM) that signs checkpoints; `oncocds audit "
        "keygen` writes one. Development creates it on first use; production requires it.",
    )
    trusted_public_keys: tuple[Path, ...] = Field(
        default=(),
        description="Extra Ed25519 public keys (PEM) whose older checkpoints still verify "
        "after a key rotation.",
    )
    checkpoint_interval_seconds: int = Field(
        default=300,
        ge=0,
        description="How often the API seals new records into a checkpoint (0: never; then "
        "run `oncocds audit checkpoint` from cron).",
    )
    checkpoint_max_records: int = Field(default=100_000, ge=1, le=10_000_000)
    retention_years: int = Field(
        default=6, ge=1, description="HIPAA §164.316(b)(2)(i) / §164.528: six years."
    )
    archive_dir: Path = Field(default=Path("var/audit-archive"))


class ComplianceSettings(BaseModel):
    """``ONCOCDS_COMPLIANCE__*``: the site's OpenID Connect provider for compliance staff."""

    model_config = ConfigDict(frozen=True)

    oidc_issuer: str | None = Field(default=None, description="Expected `iss` of tokens.")
    jwks_url: str | None = Field(default=None, description="The provider's JWKS URL.")
    jwks_file: Path | None = Field(default=None, description="Inline JWKS file (offline).")
    audience: str = Field(default="oncocds-compliance", description="Expected `aud`.")
    authorization_endpoint: str | None = Field(
        default=None, description="When set, the console offers an OIDC sign-in redirect."
    )
    token_endpoint: str | None = Field(
        default=None, description="The provider's token endpoint (authorization code + PKCE)."
    )
    client_id: str | None = Field(default=None, description="OIDC client id of the console.")
    scope: str = Field(default="openid audit.read audit.export", max_length=512)
    algorithms: tuple[str, ...] = ("ES256", "RS256", "ES384", "RS384", "EdDSA")
    roles_claim: str = Field(default="roles", description="Claim holding the user's roles.")
    leeway_seconds: int = Field(default=60, ge=0, le=300)
    max_token_lifetime_seconds: int = Field(default=3600, ge=60, le=86400)
    dev_key_path: Path = Field(
        default=Path("var/compliance-dev-oidc.json"),
        description="Development only: the private JWK of the built-in dev OIDC issuer.",
    )


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
    audit: AuditSettings = AuditSettings()
    compliance: ComplianceSettings = ComplianceSettings()

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
        if self.log_level == "DEBUG":
            reasons.append("ONCOCDS_LOG_LEVEL=DEBUG is not allowed in production")
        if not self.audit.signing_key_path.is_file():
            reasons.append(
                f"ONCOCDS_AUDIT__SIGNING_KEY_PATH {self.audit.signing_key_path} does not exist "
                "(run `oncocds audit keygen`)"
            )
        if not self.compliance.oidc_issuer or not (
            self.compliance.jwks_url or self.compliance.jwks_file
        ):
            reasons.append(
                "ONCOCDS_COMPLIANCE__OIDC_ISSUER and a JWKS (URL or file) are required for "
                "the audit API"
            )
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
