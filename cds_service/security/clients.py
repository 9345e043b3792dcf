"""Trusted CDS clients, read from the JSON or TOML file named by ``ONCOCDS_CLIENTS_FILE``.

File shape (JSON ``{"clients": [...]}`` or TOML ``[[clients]]``), one entry per client::

    iss            issuer URI, the client's identity (REQUIRED, unique)
    jwks_url       https URL of the client's JWK Set            } at least one key source:
    jwks           inline JWK Set ``{"keys": [...]}``             } jwks_url, jwks or
    jku_allowlist  JWK Set URLs a token's ``jku`` header may name } jku_allowlist
    fhir_servers   FHIR base URLs this client may send as ``fhirServer`` (SSRF guard)
    tenant         if set, tokens must carry this ``tenant`` claim
    algorithms     signing algorithms accepted from this client (default ES384, RS384)

A client whose tokens name a ``jku`` (the CDS Hooks sandbox always does) may have its key set
pinned here (``jwks``) beside ``jku_allowlist``: the pinned keys are used for an allowlisted
``jku`` without a network fetch; the ``jku`` is fetched only for a ``kid`` the pinned set lacks.

CDS Hooks 2.0 §Trusting CDS Clients: services SHOULD keep an allowlist of ``iss`` and ``jku``;
JWTs SHALL NOT use ``none`` or a symmetric algorithm, so only asymmetric ones are accepted here.
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cds_service.errors import InsecureSettingsError, OncoCDSError
from cds_service.settings import Settings

log = logging.getLogger(__name__)

#: Asymmetric JWS algorithms a client entry may name (RFC 7518 §3.1). No HS*, no none.
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
CLIENTS_FILE_NAME: Final = "clients.json"
MAX_CLIENTS_FILE_BYTES: Final = 1024 * 1024


class ClientsFileError(OncoCDSError):
    """The trusted-clients file is missing, unreadable or invalid."""


def normalise_base_url(url: str) -> str:
    """A FHIR base URL compared without its trailing slash (``https://x/fhir/`` = ``…/fhir``)."""
    return url.strip().rstrip("/")


class _ClientEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1, max_length=512)
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    jku_allowlist: tuple[str, ...] = ()
    fhir_servers: tuple[str, ...] = ()
    tenant: str | None = Field(default=None, max_length=256)
    algorithms: tuple[str, ...] | None = None
    #: Written by ``oncocds dev-setup``; production refuses to load such a client.
    development_only: bool = False

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("algorithms must not be empty")
        bad = [a for a in value if a not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(f"not an accepted asymmetric algorithm: {', '.join(bad)}")
        return value

    @field_validator("jwks_url", "jku_allowlist", "fhir_servers", mode="after")
    @classmethod
    def _http_urls(cls, value: Any) -> Any:
        urls = [value] if isinstance(value, str) else list(value or ())
        for url in urls:
            if not url.startswith(("https://", "http://")):
                raise ValueError("URLs must be http(s)")
        return value

    @field_validator("jwks")
    @classmethod
    def _keyset_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not isinstance(value.get("keys"), list):
            raise ValueError('jwks must be a JWK Set {"keys": [...]}')
        return value

    @model_validator(mode="after")
    def _has_key_source(self) -> _ClientEntry:
        if not (self.jwks_url or self.jwks or self.jku_allowlist):
            raise ValueError("a client needs jwks_url, jwks or jku_allowlist")
        return self


class _ClientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clients: list[_ClientEntry]


@dataclass(frozen=True, slots=True)
class TrustedClient:
    """One CDS client this service trusts."""

    iss: str
    jwks_url: str | None
    jwks: Mapping[str, Any] | None
    jku_allowlist: frozenset[str]
    fhir_servers: frozenset[str]
    tenant: str | None
    algorithms: frozenset[str]
    development_only: bool = False

    def allows_fhir_server(self, url: str) -> bool:
        """True when ``url`` is one of this client's FHIR base URLs (exact, modulo a final /)."""
        return normalise_base_url(url) in self.fhir_servers


class ClientRegistry:
    """The trusted clients, by ``iss``."""

    def __init__(self, clients: Iterable[TrustedClient] = (), *, source: str | None = None) -> None:
        self._by_iss = {c.iss: c for c in clients}
        self.source = source

    def get(self, iss: str) -> TrustedClient | None:
        return self._by_iss.get(iss)

    def __len__(self) -> int:
        return len(self._by_iss)

    def __iter__(self) -> Any:
        return iter(self._by_iss.values())


def _parse(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_CLIENTS_FILE_BYTES:
            raise ClientsFileError(f"clients file {path} is larger than {MAX_CLIENTS_FILE_BYTES}")
        raw = path.read_bytes()
    except OSError as exc:
        raise ClientsFileError(f"cannot read clients file {path}: {exc.strerror}") from exc
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientsFileError(f"clients file {path} is not valid JSON/TOML") from exc
    if isinstance(data, list):
        data = {"clients": data}
    if not isinstance(data, dict):
        raise ClientsFileError(f"clients file {path} must hold an object with 'clients'")
    return data


def load_clients_file(path: Path, *, default_algorithms: Iterable[str]) -> ClientRegistry:
    """Read and validate a trusted-clients file.

    Raises:
        ClientsFileError: the file cannot be read or an entry is invalid (named, without keys).
    """
    data = _parse(path)
    try:
        parsed = _ClientsFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ClientsFileError(f"clients file {path}: {where}: {first.get('msg')}") from exc
    defaults = frozenset(default_algorithms)
    seen: set[str] = set()
    clients: list[TrustedClient] = []
    for entry in parsed.clients:
        if entry.iss in seen:
            raise ClientsFileError(f"clients file {path}: duplicate iss {entry.iss!r}")
        seen.add(entry.iss)
        clients.append(
            TrustedClient(
                iss=entry.iss,
                jwks_url=entry.jwks_url,
                jwks=entry.jwks,
                jku_allowlist=frozenset(entry.jku_allowlist),
                fhir_servers=frozenset(normalise_base_url(u) for u in entry.fhir_servers),
                tenant=entry.tenant,
                algorithms=frozenset(entry.algorithms) if entry.algorithms else defaults,
                development_only=entry.development_only,
            )
        )
    return ClientRegistry(clients, source=str(path))


def _plain_http_urls(client: TrustedClient) -> bool:
    urls = [client.jwks_url or "", *client.jku_allowlist, *client.fhir_servers]
    return any(u.startswith("http://") for u in urls)


def load_trusted_clients(settings: Settings) -> ClientRegistry:
    """The clients this process trusts.

    ``ONCOCDS_CLIENTS_FILE`` when set. Otherwise, in development only, the file that
    ``oncocds dev-setup`` wrote under ``ONCOCDS_CDS_HOOKS__DEV_DIR``; else nobody (every call 401).

    Raises:
        ClientsFileError: the configured file is invalid.
        InsecureSettingsError: production settings name a development-only client.
    """
    algorithms = [a for a in settings.cds_hooks.jwt_algorithms if a in ASYMMETRIC_ALGORITHMS]
    if settings.clients_file is not None:
        registry = load_clients_file(settings.clients_file, default_algorithms=algorithms)
        if settings.is_production:
            if any(c.development_only for c in registry):
                raise InsecureSettingsError(
                    "refusing to start in production: "
                    "the clients file trusts a development-only client"
                )
            plain = sorted(c.iss for c in registry if _plain_http_urls(c))
            if plain:
                # CDS Hooks 2.0 §Security: all traffic over HTTPS; keys and FHIR data included.
                raise InsecureSettingsError(
                    "refusing to start in production: http:// key or FHIR URLs for clients "
                    + ", ".join(plain)
                )
        return registry
    if settings.is_production:
        return ClientRegistry()
    dev_file = settings.cds_hooks.dev_dir / CLIENTS_FILE_NAME
    if dev_file.is_file():
        log.warning("trusting the development CDS client from %s", dev_file)
        return load_clients_file(dev_file, default_algorithms=algorithms)
    return ClientRegistry()
