"""Service configuration: one pydantic-settings class, prefix ``ONCOCDS_``, nested with ``__``.

There is no module-level singleton: the CLI builds ``Settings()`` from the environment and passes
it to :func:`cds_service.app.create_app`; tests build it with explicit values.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cds_service.errors import InsecureSettingsError

DEFAULT_SQLITE_URL = "sqlite:///./var/oncocds.db"
MIB = 1024 * 1024


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo and its query string replaced by ``***``
    (``amqp://user:***@host:5672/vhost``), for logs and messages (CWE-532)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, query="***" if parts.query else ""))


def normalise_database_url(url: str) -> str:
    """Pin PostgreSQL URLs to the psycopg 3 driver (the only one installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class WritebackSettings(BaseModel):
    """EHR write-back with SMART Backend Services (``ONCOCDS_WRITEBACK__*``).

    Write-back is on when the FHIR base URL, token URL, client id, private key and key id are
    all set. The key is a PEM file (EC P-384 for ES384, RSA for RS384); its public half is
    registered with the EHR's authorisation server under ``kid``.
    """

    model_config = {"frozen": True}

    fhir_base_url: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    private_key_path: Path | None = None
    kid: str | None = None
    alg: Literal["ES384", "RS384"] = "ES384"
    scope: str = (
        "system/DiagnosticReport.c system/Observation.c system/Device.c system/Provenance.c"
    )
    #: Attempts per write-back round before the job is marked failed (retryable by CLI).
    max_attempts: int = Field(default=4, ge=1, le=20)
    #: First backoff in seconds; doubles per attempt (capped at ``max_backoff_seconds``).
    backoff_seconds: float = Field(default=1.0, ge=0.0, le=300.0)
    max_backoff_seconds: float = Field(default=60.0, ge=0.0, le=3600.0)
    timeout_seconds: float = Field(default=15.0, gt=0.0, le=300.0)
    #: Largest transaction Bundle posted (bytes of JSON).
    max_bundle_bytes: int = Field(default=8 * MIB, ge=1024)
    #: How often the API runs due pending jobs (HL7-created ones, rounds a restart cut short);
    #: 0: never (then ``oncocds writeback run-due`` from cron).
    sweep_interval_seconds: float = Field(default=30.0, ge=0.0, le=86400.0)

    @property
    def enabled(self) -> bool:
        return all(
            (self.fhir_base_url, self.token_url, self.client_id, self.private_key_path, self.kid)
        )


class ReportSettings(BaseModel):
    """The clinician report page (``ONCOCDS_REPORTS__*``).

    Links carry an HMAC-signed token over the analysis id and an expiry. In development the
    secret is generated once into ``secret_file``; production must set ``ONCOCDS_REPORTS__SECRET``.
    """

    model_config = {"frozen": True}

    secret: SecretStr | None = None
    secret_file: Path = Path("var/report-secret")
    token_ttl_seconds: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600)


class CdsHooksSettings(BaseModel):
    """CDS Hooks protocol layer (env ``ONCOCDS_CDS_HOOKS__*``)."""

    model_config = ConfigDict(frozen=True)

    #: Algorithms any client may use unless its entry narrows them (CDS Hooks 2.0 §Trusting CDS
    #: Clients: ES384 and RS384 RECOMMENDED; none and every HMAC algorithm SHALL NOT be used).
    jwt_algorithms: tuple[str, ...] = ("ES384", "RS384")
    #: Clock skew tolerated on exp/iat/nbf, seconds (at most 60).
    jwt_clock_skew_s: int = Field(default=60, ge=0, le=60)
    #: Longest accepted token lifetime exp - iat (best practice: no more than an hour).
    jwt_max_lifetime_s: int = Field(default=3600, ge=30, le=3600)
    #: Tokens longer than this are refused before any parsing.
    jwt_max_bytes: int = Field(default=8192, ge=512, le=65536)
    #: How long a fetched JWK Set is trusted before it is fetched again.
    jwks_cache_ttl_s: int = Field(default=300, ge=0)
    #: Minimum interval between refetches of one JWK Set on an unknown kid (stops kid flooding).
    jwks_min_refresh_s: float = Field(default=10.0, ge=0)
    jwks_timeout_s: float = Field(default=3.0, gt=0, le=30)
    #: Prefetch fallback: timeout of one FHIR request and the deadline for all of a call's.
    prefetch_request_timeout_s: float = Field(default=3.0, gt=0, le=60)
    prefetch_deadline_s: float = Field(default=8.0, gt=0, le=120)
    #: Bundle pages followed per prefetch key, and bytes accepted per FHIR response.
    prefetch_max_pages: int = Field(default=5, ge=1, le=100)
    prefetch_max_response_bytes: int = Field(default=8 * MIB, ge=1024)
    #: Browser origins allowed by CORS (the CDS Hooks sandbox, an EHR web client); default none.
    cors_origins: tuple[str, ...] = ()
    #: Reports remembered per process for reuse: a chart opened again with the same genomic
    #: results links the analysis already stored instead of storing another (0: never reuse).
    recent_reports: int = Field(default=128, ge=0, le=4096)
    #: Where ``oncocds dev-setup`` keeps the development client key pair and clients file.
    dev_dir: Path = Path("var/dev-client")

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # CDS Hooks 2.0: JWTs SHALL NOT use "none" nor any symmetric (HMAC) algorithm.
        allowed = {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
        if not value or any(alg not in allowed for alg in value):
            raise ValueError("only asymmetric JWS algorithms (ES*, RS*, PS*) are accepted")
        return value


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
    #: Read CRLF and LF segment separators as CR (senders whose line endings were converted);
    #: the inbox keeps the bytes as received. False: such messages get AR (HL7 v2.5.1 2.5.4).
    normalise_line_endings: bool = True
    #: Without a broker: run the ``hl7.process`` jobs (committed with each message) on an
    #: in-process job executor for the ``hl7`` queue inside the listener process (false:
    #: ``oncocds hl7 worker`` or an API process runs them).
    worker_in_process: bool = True
    #: The periodic application ACK sweep (``hl7.application-acks``) runs every 10 x this.
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    #: Application ACK deliveries claimed per sweep.
    worker_batch: int = Field(default=10, ge=1, le=1000)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    #: A claimed message whose worker died is claimed again after this long.
    lease_seconds: float = Field(default=300.0, gt=0)
    responder_application: str = "ONCOCDS"
    responder_facility: str = ""
    #: Enhanced mode (MSH-16): where each sender's own MLLP listener takes our application
    #: ACKs, keyed by ``MSH-3|MSH-4`` as the sender writes them, value ``host:port``. A sender
    #: without a route gets none (the ACK is stored with status ``no-route``).
    application_ack_routes: dict[str, str] = Field(default_factory=dict)
    application_ack_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("application_ack_routes")
    @classmethod
    def _host_port(cls, routes: dict[str, str]) -> dict[str, str]:
        for key, value in routes.items():
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536 or "|" not in key:
                raise ValueError(
                    "application_ack_routes maps 'MSH-3|MSH-4' to 'host:port' (got an invalid "
                    "entry)"
                )
        return routes


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
    archive_interval_seconds: int = Field(
        default=0,
        ge=0,
        le=366 * 86400,
        description="How often the periodic `audit.archive` job (maintenance queue, once across "
        "all processes) archives the sealed records older than the retention window to "
        "`archive_dir` and removes them from the live trail (0: never; the default, since "
        "archiving moves records out of the live trail: run `oncocds audit archive` instead).",
    )


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


class LlmSettings(BaseModel):
    """``ONCOCDS_LLM__*``: plain-language explanations from a local model served by Ollama
    (issue #16). Off by default, so ``make run`` works without a model server; the cards never
    wait for it either way (explanations are ``llm.explain`` jobs)."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = False
    url: str = Field(default="http://127.0.0.1:11434", max_length=512)
    #: The model as Ollama names it, and its pinned digest (``ollama list``): a model replaced
    #: under the same name is refused, not used.
    model: str = Field(default="gemma3:4b", max_length=200)
    digest: str | None = Field(default=None, max_length=100)
    keep_alive: str = Field(default="30m", max_length=16)
    num_ctx: int = Field(default=4096, ge=512, le=131072)
    #: Tokens generated at most per answer: the setting that decides the latency.
    num_predict: int = Field(default=512, ge=16, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int = Field(default=16, ge=0)
    connect_timeout_s: float = Field(default=2.0, gt=0, le=60)
    read_timeout_s: float = Field(default=120.0, gt=0, le=1800)

    def insecure_reasons(self) -> list[str]:
        if self.enabled and not self.digest:
            return ["ONCOCDS_LLM__DIGEST must pin the model's digest when the LLM is enabled"]
        return []


class ImagingServiceSettings(BaseModel):
    """The imaging service (``ONCOCDS_IMAGING_SERVICE__*``, issue #15): where images may be
    fetched from, with which credential, within which limits; the PACS notification token.

    The model bundle itself is ``ONCOCDS_IMAGING__BUNDLE_PATH`` (the ``imaging`` section).
    """

    model_config = ConfigDict(frozen=True)

    #: DICOMweb roots and FHIR bases image fetches may reach (SSRF allowlist); empty: none.
    allowlist: tuple[str, ...] = ()
    #: The PACS's DICOMweb root, for studies announced by its stable-study notification and
    #: ImagingStudy resources that name no Endpoint.
    pacs_dicomweb_url: str | None = None
    #: The configured PACS credential: a bearer token, or basic user and password.
    pacs_token: SecretStr | None = None
    pacs_username: str | None = None
    pacs_password: SecretStr | None = None
    #: Bearer token for FHIR Binary/DocumentReference reads when no client token is at hand.
    fhir_token: SecretStr | None = None
    #: The shared secret the PACS's Lua script sends to the notification route.
    notify_token: SecretStr | None = None
    #: Largest upload body (bytes) and image limits of one fetch.
    max_upload_bytes: int = Field(default=32 * MIB, ge=1024, le=1024 * MIB)
    max_fetch_bytes: int = Field(default=256 * MIB, ge=1024)
    max_pixels: int = Field(default=64_000_000, ge=1024)
    request_timeout_s: float = Field(default=30.0, gt=0, le=600)
    fetch_deadline_s: float = Field(default=300.0, gt=0, le=3600)
    #: Studies and attachments one chart open may enqueue (the rest wait for the next open).
    max_references_per_call: int = Field(default=20, ge=1, le=500)


class JobsSettings(BaseModel):
    """``ONCOCDS_JOBS__*``: the job system (issue 17). Without a broker the API runs jobs on an
    in-process thread pool; with ``broker_url`` the Celery workers run them instead."""

    model_config = ConfigDict(frozen=True)

    #: Celery broker, e.g. ``amqp://user:pass@broker:5672/oncocds``. When set, the in-process
    #: executor is not started: ``oncocds relay`` publishes jobs and ``oncocds worker`` runs them.
    #: A secret (it carries the broker password): read it with :meth:`broker_url_value`, show
    #: it with :meth:`broker_url_redacted`.
    broker_url: SecretStr | None = None
    #: Run the in-process executor in the API process (false: another process runs jobs).
    in_process: bool = True
    #: Worker threads of the in-process executor.
    threads: int = Field(default=2, ge=1, le=64)
    #: How often idle workers look for due jobs (a commit that enqueues wakes them at once).
    poll_seconds: float = Field(default=1.0, gt=0, le=3600)
    #: How often the periodic schedule is ticked (the due time of each periodic kind).
    schedule_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    #: Extra time beyond a kind's time limit before a running job's claim lapses and another
    #: worker may take it.
    lease_grace_seconds: float = Field(default=30.0, ge=0, le=86400)
    #: More modules that register job kinds, beside ``cds_service/jobs/kinds.py`` (tests).
    extra_modules: tuple[str, ...] = ()
    #: Queues this process takes (empty: all).
    queues: tuple[str, ...] = ()
    #: How long shutdown waits for jobs under way.
    stop_timeout_seconds: float = Field(default=10.0, ge=0, le=600)
    #: Succeeded jobs are deleted after this many days (dead and failed ones stay).
    retain_succeeded_days: int = Field(default=7, ge=1, le=3650)
    prune_interval_seconds: float = Field(default=3600.0, ge=0, le=86400)
    #: Celery (with ``broker_url``): broker queues are ``<queue_prefix><queue>`` (several sites
    #: or test runs on one vhost); every relay and worker of a site must use the same prefix.
    queue_prefix: str = Field(default="oncocds.", max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")
    #: Run an outbox relay thread in each API/listener process (woken at commit); false: only
    #: ``oncocds relay`` publishes.
    relay_in_process: bool = True
    #: How often a relay looks for unpublished jobs when nothing woke it.
    relay_poll_seconds: float = Field(default=1.0, gt=0, le=3600)
    #: Jobs published per relay transaction.
    relay_batch: int = Field(default=200, ge=1, le=10_000)
    #: Celery prefetch multiplier of light queues (heavy ones, imaging and llm, prefetch 1).
    prefetch_multiplier: int = Field(default=4, ge=1, le=256)

    def broker_url_value(self) -> str | None:
        """The broker URL with its password, for the Celery/kombu connection only."""
        return self.broker_url.get_secret_value() if self.broker_url else None

    def broker_url_redacted(self) -> str | None:
        """The broker URL for logs and messages: the password (and any query string, which
        may carry TLS key paths or credentials) replaced by ``***``."""
        url = self.broker_url_value()
        return redact_url(url) if url else None


class ImagingSettings(BaseModel):
    """``ONCOCDS_IMAGING__*``: the histopathology model (issue #15)."""

    model_config = ConfigDict(frozen=True)

    bundle_path: Path | None = Field(
        default=None,
        description="The installed imaging model bundle (a directory `oncocds train` exported; "
        "`oncocds model verify` checks it). Unset: no imaging model is installed.",
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
    writeback: WritebackSettings = WritebackSettings()
    reports: ReportSettings = ReportSettings()
    cds_hooks: CdsHooksSettings = CdsHooksSettings()
    #: HL7 v2 MLLP listener address (exactly ONCOCDS_MLLP_HOST / ONCOCDS_MLLP_PORT, issue #5).
    mllp_host: str = "127.0.0.1"
    mllp_port: int = Field(default=2575, ge=0, le=65535)
    hl7: Hl7Settings = Hl7Settings()
    audit: AuditSettings = AuditSettings()
    compliance: ComplianceSettings = ComplianceSettings()
    llm: LlmSettings = LlmSettings()

    imaging_service: ImagingServiceSettings = ImagingServiceSettings()
    jobs: JobsSettings = JobsSettings()
    imaging: ImagingSettings = ImagingSettings()

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
        if self.reports.secret is None:
            reasons.append("ONCOCDS_REPORTS__SECRET is not set (report links must be signed)")
        if self.writeback.enabled and not str(self.writeback.fhir_base_url).startswith("https://"):
            reasons.append("ONCOCDS_WRITEBACK__FHIR_BASE_URL must be https:// in production")
        if "*" in self.cds_hooks.cors_origins:
            reasons.append("ONCOCDS_CDS_HOOKS__CORS_ORIGINS must list origins, not '*'")
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
        reasons.extend(self.llm.insecure_reasons())
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
