"""CDS Hooks 2.0 wire models (request, context per hook, response, cards, discovery, feedback).

JSON is camelCase through aliases; Python stays snake_case. Response models forbid unknown fields
and are serialised with ``exclude_none`` because the spec forbids ``null`` and empty values for
optional elements (§Use of JSON). Invariants come from the spec text and the 3.0 FSH invariants
(``cds-resp-1`` … ``cds-resp-6``, ``cds-fb-2``, ``cds-fb-3``, ``cds-r-1``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
#: Hook names: the library's (``patient-view``) or reverse-domain ones (``org.example.x``).
HOOK_NAME = re.compile(r"^[a-z0-9][a-z0-9\-.]{0,127}$")
SERVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,127}$")
MAX_LIST = 200


def _fhir_id(value: str) -> str:
    if not FHIR_ID.match(value):
        raise ValueError("not a FHIR id")
    return value


def _reference(value: str) -> str:
    kind, sep, ident = value.partition("/")
    if not sep or not kind.isalpha() or not FHIR_ID.match(ident):
        raise ValueError("not a relative reference ResourceType/id")
    return value


FhirId = Annotated[str, AfterValidator(_fhir_id)]
Reference = Annotated[str, Field(max_length=200), AfterValidator(_reference)]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class WireModel(CamelModel):
    """Response side: strict, no unknown fields."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# ------------------------------------------------------------------------- request


class FhirAuthorization(BaseModel):
    """CDS Hooks 2.0 §Passing the Access Token: OAuth 2.0 field names, not camelCase.

    The token is a :class:`SecretStr`: it never shows in reprs or logs and is never stored.
    """

    model_config = ConfigDict(extra="ignore")

    access_token: SecretStr = Field(min_length=1, max_length=8192)
    token_type: Literal["Bearer", "bearer"]
    expires_in: int = Field(ge=0)
    scope: str = Field(max_length=4096)
    subject: str = Field(max_length=512)
    patient: str | None = Field(default=None, max_length=64)


class CdsRequest(CamelModel):
    """The body of ``POST /cds-services/{id}``; unknown top-level fields are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    hook: str = Field(min_length=1, max_length=128)
    hook_instance: str = Field(min_length=1, max_length=128)
    fhir_server: str | None = Field(default=None, max_length=2048)
    fhir_authorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @field_validator("fhir_server")
    @classmethod
    def _absolute_http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", value):
            raise ValueError("fhirServer must be an absolute http(s) base URL")
        return value

    @model_validator(mode="after")
    def _server_with_token(self) -> Self:
        # CDS Hooks 2.0 §HTTP Request: fhirServer is REQUIRED if fhirAuthorization is present.
        if self.fhir_authorization is not None and self.fhir_server is None:
            raise ValueError("fhirServer is required when fhirAuthorization is present")
        return self


class HookContext(CamelModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class PatientViewContext(HookContext):
    """patient-view 1.0: userId (Practitioner, PractitionerRole, Patient, RelatedPerson)."""

    user_id: Reference
    patient_id: FhirId
    encounter_id: FhirId | None = None

    @field_validator("user_id")
    @classmethod
    def _user_type(cls, value: str) -> str:
        allowed = ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson")
        if value.split("/", 1)[0] not in allowed:
            raise ValueError("userId must reference " + ", ".join(allowed))
        return value


def _bundle(value: dict[str, Any]) -> dict[str, Any]:
    if value.get("resourceType") != "Bundle":
        raise ValueError("must be a FHIR Bundle")
    return value


Bundle = Annotated[dict[str, Any], AfterValidator(_bundle)]


class _OrderContext(HookContext):
    user_id: Reference
    patient_id: FhirId
    encounter_id: FhirId | None = None
    draft_orders: Bundle

    @field_validator("user_id")
    @classmethod
    def _user_type(cls, value: str) -> str:
        if value.split("/", 1)[0] not in ("Practitioner", "PractitionerRole"):
            raise ValueError("userId must reference Practitioner or PractitionerRole")
        return value


class OrderSelectContext(_OrderContext):
    """order-select 1.0: the new orders' ids in ``selections`` and all drafts in draftOrders."""

    selections: list[Reference] = Field(min_length=1, max_length=MAX_LIST)


class OrderSignContext(_OrderContext):
    """order-sign 1.0."""


class EncounterContext(HookContext):
    """encounter-start / encounter-discharge 1.0: all three ids REQUIRED."""

    user_id: Reference
    patient_id: FhirId
    encounter_id: FhirId


class OrderDispatchContext(HookContext):
    """order-dispatch 1.1 (draft)."""

    patient_id: FhirId
    dispatched_orders: list[Reference] = Field(min_length=1, max_length=MAX_LIST)
    performer: Reference
    fulfillment_tasks: list[dict[str, Any]] | None = None


class AppointmentBookContext(HookContext):
    user_id: Reference
    patient_id: FhirId
    encounter_id: FhirId | None = None
    appointments: Bundle


#: Context model per standard hook (CDS Hooks Library 1.0.1). Other hooks are checked generically.
CONTEXT_MODELS: dict[str, type[HookContext]] = {
    "patient-view": PatientViewContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderSignContext,
    "encounter-start": EncounterContext,
    "encounter-discharge": EncounterContext,
    "order-dispatch": OrderDispatchContext,
    "appointment-book": AppointmentBookContext,
}

#: Context fields usable as ``{{context.X}}`` prefetch tokens ("Prefetch Token: Yes").
PREFETCH_TOKEN_FIELDS: dict[str, frozenset[str]] = {
    "patient-view": frozenset({"userId", "patientId", "encounterId"}),
    "order-select": frozenset({"userId", "patientId", "encounterId"}),
    "order-sign": frozenset({"userId", "patientId", "encounterId"}),
    "encounter-start": frozenset({"userId", "patientId", "encounterId"}),
    "encounter-discharge": frozenset({"userId", "patientId", "encounterId"}),
    "order-dispatch": frozenset({"patientId", "dispatchedOrders", "performer"}),
    "appointment-book": frozenset({"userId", "patientId", "encounterId"}),
}


# ------------------------------------------------------------------------- response


class Coding(WireModel):
    """CDS Hooks Coding: ``code`` and ``system`` REQUIRED, ``display`` conditional."""

    code: str = Field(min_length=1, max_length=128)
    system: str = Field(min_length=1, max_length=512)
    display: str | None = Field(default=None, min_length=1, max_length=512)


class OverrideReason(Coding):
    """An override reason: ``display`` REQUIRED (2.0 §Card; cds-resp-4)."""

    display: str = Field(min_length=1, max_length=512)


class Source(WireModel):
    label: str = Field(min_length=1, max_length=200)
    url: str | None = Field(default=None, pattern=r"^https?://", max_length=2048)
    icon: str | None = Field(default=None, pattern=r"^https?://", max_length=2048)
    topic: Coding | None = None


class Action(WireModel):
    """create|update|delete; ``resource`` for create/update, ``resourceId`` for delete."""

    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1, max_length=1000)
    resource: dict[str, Any] | None = None
    resource_id: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _target(self) -> Self:
        if self.type in ("create", "update"):
            if not self.resource or "resourceType" not in self.resource:
                raise ValueError(f"{self.type} action needs a resource")
        elif self.resource_id is None or self.resource is not None:
            # cds-resp-2: delete uses resourceId (resource for delete is deprecated).
            raise ValueError("delete action needs resourceId and no resource")
        return self


class Suggestion(WireModel):
    label: str = Field(min_length=1, max_length=200)
    uuid: str | None = Field(default=None, max_length=36)
    is_recommended: bool | None = None
    actions: list[Action] | None = Field(default=None, max_length=MAX_LIST)

    @field_validator("actions")
    @classmethod
    def _no_empty(cls, value: list[Action] | None) -> list[Action] | None:
        return value or None


class Link(WireModel):
    label: str = Field(min_length=1, max_length=200)
    url: str = Field(pattern=r"^https?://", max_length=2048)
    type: Literal["absolute", "smart"]
    app_context: str | None = Field(default=None, max_length=4096)
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _app_context_smart_only(self) -> Self:
        # cds-resp-3: appContext only for smart links.
        if self.app_context is not None and self.type != "smart":
            raise ValueError("appContext is allowed only on smart links")
        return self


class Card(WireModel):
    """A CDS card. ``uuid`` is assigned by the service layer, not by the clinical service."""

    uuid: str | None = Field(default=None, max_length=36)
    summary: str = Field(min_length=1, max_length=139)  # "<140-character" (2.0 §Card)
    detail: str | None = Field(default=None, max_length=20_000)
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = Field(default=None, max_length=MAX_LIST)
    selection_behavior: Literal["at-most-one", "any"] | None = None
    override_reasons: list[OverrideReason] | None = Field(default=None, max_length=MAX_LIST)
    links: list[Link] | None = Field(default=None, max_length=MAX_LIST)

    @field_validator("suggestions", "override_reasons", "links")
    @classmethod
    def _no_empty(cls, value: list[Any] | None) -> list[Any] | None:
        return value or None  # §Use of JSON: omit rather than send []

    @model_validator(mode="after")
    def _selection(self) -> Self:
        if self.suggestions and self.selection_behavior is None:
            # cds-resp-6: selectionBehavior MUST be present when suggestions are.
            raise ValueError("selectionBehavior is required when there are suggestions")
        if self.selection_behavior == "at-most-one" and self.suggestions:
            recommended = sum(1 for s in self.suggestions if s.is_recommended)
            if recommended > 1:
                raise ValueError("at-most-one allows at most one recommended suggestion")
        return self


class CdsResponse(WireModel):
    cards: list[Card] = Field(default_factory=list, max_length=MAX_LIST)
    system_actions: list[Action] | None = Field(default=None, max_length=MAX_LIST)

    @field_validator("system_actions")
    @classmethod
    def _no_empty(cls, value: list[Action] | None) -> list[Action] | None:
        return value or None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data.setdefault("cards", [])
        return data

    def to_json_bytes(self) -> bytes:
        """The same document as :meth:`to_json`, rendered by pydantic-core in one pass (a
        report card carries a whole DiagnosticReport: dict-then-``json.dumps`` was ~17 ms)."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


# ------------------------------------------------------------------------- discovery


class CdsServiceDescriptor(WireModel):
    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usage_requirements: str | None = None


class DiscoveryResponse(WireModel):
    services: list[CdsServiceDescriptor]


# ------------------------------------------------------------------------- feedback


class AcceptedSuggestion(CamelModel):
    id: str = Field(min_length=1, max_length=64)


class FeedbackOverrideReason(CamelModel):
    reason: Coding | None = None
    user_comment: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.reason is None and self.user_comment is None:
            raise ValueError("overrideReason needs reason or userComment")  # cds-fb-3
        return self


class FeedbackItem(CamelModel):
    card: str = Field(min_length=1, max_length=64)
    outcome: Literal["accepted", "overridden"]
    accepted_suggestions: list[AcceptedSuggestion] | None = Field(default=None, max_length=MAX_LIST)
    override_reason: FeedbackOverrideReason | None = None
    outcome_timestamp: datetime

    @field_validator("outcome_timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("outcomeTimestamp must carry a UTC offset (RFC 3339)")
        return value

    @model_validator(mode="after")
    def _accepted_needs_suggestions(self) -> Self:
        if self.outcome == "accepted" and not self.accepted_suggestions:
            raise ValueError("acceptedSuggestions is required for accepted outcomes")  # cds-fb-2
        if self.outcome == "accepted" and self.override_reason is not None:
            raise ValueError("overrideReason applies only to overridden outcomes")
        return self


class FeedbackRequest(CamelModel):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_LIST)


class FeedbackResponse(WireModel):
    stored: int
    duplicates: int


class OverrideReasonCount(WireModel):
    system: str | None = None
    code: str | None = None
    display: str | None = None
    count: int


class FeedbackSummaryRow(WireModel):
    service: str
    card_kind: str
    accepted: int
    overridden: int
    override_reasons: list[OverrideReasonCount]
    user_comments: int


class FeedbackSummary(WireModel):
    since: datetime | None = None
    until: datetime | None = None
    rows: list[FeedbackSummaryRow]
