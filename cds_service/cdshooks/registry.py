"""The one registry of CDS services.

A clinical service is a small module (see ``cds_service/cdshooks/services/``) declaring::

    ID = "example-service"                      # {baseUrl}/cds-services/{ID}
    HOOK = "patient-view"
    TITLE = "Human-friendly name"               # RECOMMENDED
    DESCRIPTION = "What it does"                # REQUIRED
    PREFETCH = {"patient": "Patient/{{context.patientId}}"}   # optional
    REQUIRED_PREFETCH = frozenset({"patient"})  # optional; default: every PREFETCH key
    USAGE_REQUIREMENTS = "..."                  # optional

    def handle(request: ResolvedRequest) -> CdsResponse: ...

``create_app(settings, cds_services=[module, ...])`` registers them; the built-in production list is
:data:`cds_service.cdshooks.services.BUILTIN_SERVICES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cds_service.cdshooks.call_audit import CallAudit
from cds_service.cdshooks.prefetch import check_template
from cds_service.cdshooks.schemas import HOOK_NAME, SERVICE_ID, CdsResponse, CdsServiceDescriptor
from cds_service.security.clients import TrustedClient

if TYPE_CHECKING:
    from cds_service.cdshooks.environment import ServiceEnvironment


@dataclass(frozen=True, slots=True)
class ResolvedRequest:
    """What a clinical service gets: validated context and resolved prefetch, no tokens."""

    service_id: str
    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    #: Key → FHIR resource / Bundle, or ``None`` for "known empty" (the client sent null, or a
    #: read found nothing). Keys that could not be obtained are absent (only optional ones).
    prefetch: Mapping[str, Any]
    #: Optional keys that could not be had, with the reason (for degraded-mode cards).
    prefetch_errors: Mapping[str, str]
    fhir_server: str | None
    client: TrustedClient
    tenant: str | None
    #: The call's audit: records the service produced (``analysis.create``) and entities it
    #: names; the runtime appends them with the call's own record in one transaction, also when
    #: the call fails afterwards.
    audit: CallAudit
    extension: Mapping[str, Any] | None = None
    #: Storage and links for services that keep what they computed (None in bare registries).
    environment: ServiceEnvironment | None = None
    request_id: str | None = None

    @property
    def patient_id(self) -> str | None:
        value = self.context.get("patientId")
        return value if isinstance(value, str) else None

    @property
    def user_id(self) -> str | None:
        value = self.context.get("userId")
        return value if isinstance(value, str) else None


Handler = Callable[[ResolvedRequest], CdsResponse]


class ServiceDefinitionError(ValueError):
    """A service module declares something the spec does not allow."""


@dataclass(frozen=True, slots=True)
class CdsServiceDefinition:
    id: str
    hook: str
    description: str
    handler: Handler
    title: str | None = None
    prefetch: Mapping[str, str] = field(default_factory=dict)
    required_prefetch: frozenset[str] | None = None
    usage_requirements: str | None = None

    def __post_init__(self) -> None:
        if not SERVICE_ID.match(self.id):
            raise ServiceDefinitionError(f"service id {self.id!r} is not URL-safe")
        if not HOOK_NAME.match(self.hook):
            raise ServiceDefinitionError(f"{self.id}: hook {self.hook!r} is not a hook name")
        if not self.description:
            raise ServiceDefinitionError(f"{self.id}: description is REQUIRED")
        for key, template in self.prefetch.items():
            if not re.match(r"^[A-Za-z0-9_\-]{1,64}$", key):
                raise ServiceDefinitionError(f"{self.id}: prefetch key {key!r} is not simple")
            problem = check_template(template, self.hook)
            if problem:
                raise ServiceDefinitionError(f"{self.id}: prefetch {key!r}: {problem}")
        unknown = (self.required_prefetch or frozenset()) - set(self.prefetch)
        if unknown:
            raise ServiceDefinitionError(f"{self.id}: required keys not in prefetch: {unknown}")

    @property
    def required_keys(self) -> frozenset[str]:
        if self.required_prefetch is None:
            return frozenset(self.prefetch)
        return self.required_prefetch

    def descriptor(self) -> CdsServiceDescriptor:
        return CdsServiceDescriptor(
            hook=self.hook,
            title=self.title,
            description=self.description,
            id=self.id,
            prefetch=dict(self.prefetch) or None,
            usage_requirements=self.usage_requirements,
        )

    @classmethod
    def from_module(cls, module: ModuleType) -> CdsServiceDefinition:
        """Build a definition from a service module's declarations."""
        try:
            handler = module.handle
            ident, hook, description = module.ID, module.HOOK, module.DESCRIPTION
        except AttributeError as exc:
            raise ServiceDefinitionError(
                f"{module.__name__} must declare ID, HOOK, DESCRIPTION and handle()"
            ) from exc
        required = getattr(module, "REQUIRED_PREFETCH", None)
        return cls(
            id=ident,
            hook=hook,
            description=description,
            handler=handler,
            title=getattr(module, "TITLE", None),
            prefetch=dict(getattr(module, "PREFETCH", {}) or {}),
            required_prefetch=frozenset(required) if required is not None else None,
            usage_requirements=getattr(module, "USAGE_REQUIREMENTS", None),
        )


ServiceSpec = CdsServiceDefinition | ModuleType


class ServiceRegistry:
    """Services by id, in registration order (the discovery order)."""

    def __init__(self, services: Iterable[ServiceSpec] = ()) -> None:
        self._services: dict[str, CdsServiceDefinition] = {}
        for spec in services:
            self.register(spec)

    def register(self, spec: ServiceSpec) -> CdsServiceDefinition:
        definition = (
            spec
            if isinstance(spec, CdsServiceDefinition)
            else CdsServiceDefinition.from_module(spec)
        )
        if definition.id in self._services:
            raise ServiceDefinitionError(f"duplicate service id {definition.id!r}")
        self._services[definition.id] = definition
        return definition

    def get(self, service_id: str) -> CdsServiceDefinition | None:
        return self._services.get(service_id)

    def all(self) -> list[CdsServiceDefinition]:
        return list(self._services.values())
