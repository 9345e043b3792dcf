"""CDS Hooks orchestration: authenticate, validate, resolve prefetch, run the service, store cards.

Feedback on the cards is :mod:`cds_service.cdshooks.feedback`; what a call audits is a
:class:`~cds_service.cdshooks.call_audit.CallAudit`.

:class:`CdsHooksRuntime` is built once per app (``app.state.cds_hooks``) and holds the registry,
the JWT verifier, the JWKS cache and the prefetch resolver.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from cds_service.audit import AuditTrail
from cds_service.audit.service import AuditEntity, Outcome
from cds_service.cdshooks.call_audit import CallAudit, CallMeta
from cds_service.cdshooks.environment import ServiceEnvironment
from cds_service.cdshooks.prefetch import FetchEvent, PrefetchResolver
from cds_service.cdshooks.registry import CdsServiceDefinition, ResolvedRequest, ServiceRegistry
from cds_service.cdshooks.repository import card_values, insert_cards
from cds_service.cdshooks.schemas import (
    CONTEXT_MODELS,
    CdsRequest,
    CdsResponse,
    DiscoveryResponse,
)
from cds_service.db.base import utcnow
from cds_service.errors import (
    BadRequestError,
    DatabaseError,
    ForbiddenError,
    NotFoundError,
    OncoCDSError,
)
from cds_service.models.cdshooks import CdsCard
from cds_service.security.clients import ClientRegistry
from cds_service.security.jwks import JwksCache
from cds_service.security.jwt import ClientJwtVerifier, VerifiedClient
from cds_service.security.replay import ReplayStore
from cds_service.settings import Settings

__all__ = ["CallMeta", "CdsHooksRuntime"]

log = logging.getLogger(__name__)


class CdsHooksRuntime:
    """Everything the CDS Hooks endpoints share within one app."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: ServiceRegistry,
        clients: ClientRegistry,
        replay_store: ReplayStore,
        audit: AuditTrail,
        environment: ServiceEnvironment | None = None,
    ) -> None:
        cfg = settings.cds_hooks
        self.settings = settings
        self.registry = registry
        self.audit = audit
        self.environment = environment
        self.jwks = JwksCache(
            ttl_s=cfg.jwks_cache_ttl_s,
            min_refresh_s=cfg.jwks_min_refresh_s,
            timeout_s=cfg.jwks_timeout_s,
        )
        self.verifier = ClientJwtVerifier(
            clients=clients,
            jwks_cache=self.jwks,
            replay_store=replay_store,
            algorithms=frozenset(cfg.jwt_algorithms),
            clock_skew_s=cfg.jwt_clock_skew_s,
            max_lifetime_s=cfg.jwt_max_lifetime_s,
            max_bytes=cfg.jwt_max_bytes,
        )
        self.resolver = PrefetchResolver(cfg)

    def close(self) -> None:
        self.jwks.close()
        self.resolver.close()

    # ------------------------------------------------------------------ discovery

    def discovery(self) -> dict[str, Any]:
        response = DiscoveryResponse(services=[d.descriptor() for d in self.registry.all()])
        data: dict[str, Any] = response.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data

    # ------------------------------------------------------------------ service call

    def call(
        self,
        service_id: str,
        body: CdsRequest,
        caller: VerifiedClient,
        meta: CallMeta,
    ) -> CdsResponse:
        """Run one hook call and return the response (cards with uuids); every outcome is
        audited.

        Raises:
            NotFoundError: unknown service.
            BadRequestError: wrong hook, invalid context or insecure fhirServer.
            ForbiddenError: fhirServer is not one of the client's FHIR servers.
            PreconditionFailedError: required prefetch unobtainable (412).
        """
        started = time.monotonic()
        patient = body.context.get("patientId") if isinstance(body.context, dict) else None
        patient_id = patient if isinstance(patient, str) and len(patient) <= 64 else None
        user = body.context.get("userId")
        # What the service asks to have audited (analysis.create, the analysis it linked) goes
        # into one transaction with the call's own record, whatever the outcome.
        audit = CallAudit(
            agent_who=caller.iss,
            agent_user=user if isinstance(user, str) and len(user) <= 200 else None,
            tenant=caller.tenant,
            patient_id=patient_id,
            hook_instance=body.hook_instance,
            request_id=meta.request_id,
            remote_addr=meta.remote_addr,
        )
        fetched: list[str] = []
        try:
            definition = self.registry.get(service_id)
            if definition is None:
                raise NotFoundError(f"unknown CDS service {service_id!r}")  # noqa: TRY301 - audited
            context = self._validated_context(definition, body)
            self._check_fhir_server(body, caller)

            def on_fetch(event: FetchEvent) -> None:
                self._audit_fetch(event, service_id, audit)

            token = body.fhir_authorization.access_token if body.fhir_authorization else None
            resolved = self.resolver.resolve(
                definition.prefetch,
                required=definition.required_keys,
                context=context,
                prefetch=body.prefetch,
                fhir_server=body.fhir_server,
                access_token=token.get_secret_value() if token else None,
                on_fetch=on_fetch,
            )
            fetched = resolved.fetched
            request = ResolvedRequest(
                service_id=definition.id,
                hook=definition.hook,
                hook_instance=body.hook_instance,
                context=context,
                prefetch=resolved.data,
                prefetch_errors=resolved.errors,
                fhir_server=body.fhir_server,
                client=caller.client,
                tenant=caller.tenant,
                audit=audit,
                extension=body.extension,
                environment=self.environment,
                request_id=meta.request_id,
            )
            response = definition.handler(request)
            if not isinstance(response, CdsResponse):
                raise TypeError(f"service {definition.id} returned {type(response).__name__}")  # noqa: TRY301
            rows = self._issue(response, definition, body, caller, patient_id)
        except OncoCDSError as exc:
            self._audit_call(
                service_id,
                audit=audit,
                started=started,
                status=exc.status_code,
                rows=[],
                fetched=fetched,
                problem=exc.message,
            )
            raise
        except Exception:
            self._audit_call(
                service_id,
                audit=audit,
                started=started,
                status=500,
                rows=[],
                fetched=fetched,
                problem="service failed",
            )
            raise
        try:
            # The cards and the call's audit record commit together (one transaction under the
            # audit append lock): a card exists iff its issue is audited, and the request needs
            # no session of its own.
            self._audit_call(
                service_id,
                audit=audit,
                started=started,
                status=200,
                rows=rows,
                fetched=fetched,
                problem=None,
                store_cards=True,
            )
        except DatabaseError:
            self._audit_call(
                service_id,
                audit=audit,
                started=started,
                status=503,
                rows=[],
                fetched=fetched,
                problem="issued cards could not be stored",
            )
            raise
        return response

    @staticmethod
    def _validated_context(definition: CdsServiceDefinition, body: CdsRequest) -> dict[str, Any]:
        if body.hook != definition.hook:
            raise BadRequestError(
                f"hook {body.hook!r} does not match service hook {definition.hook!r}"
            )
        model = CONTEXT_MODELS.get(definition.hook)
        if model is None:
            return dict(body.context)
        try:
            model.model_validate(body.context)
        except ValidationError as exc:
            # Field locations and messages only, never the offending values (PHI).
            problems = "; ".join(
                f"context.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors()[:10]
            )
            raise BadRequestError(f"invalid {definition.hook} context: {problems}") from exc
        return dict(body.context)

    def _check_fhir_server(self, body: CdsRequest, caller: VerifiedClient) -> None:
        if body.fhir_server is None:
            return
        if self.settings.is_production and not body.fhir_server.startswith("https://"):
            # CDS Hooks 2.0: fhirServer scheme MUST be https when production data is exchanged.
            raise BadRequestError("fhirServer must be https")
        if not caller.client.allows_fhir_server(body.fhir_server):
            # SSRF guard: we only ever send the access token to the client's own FHIR servers.
            raise ForbiddenError("fhirServer is not an allowed FHIR server for this client")

    @staticmethod
    def _issue(
        response: CdsResponse,
        definition: CdsServiceDefinition,
        body: CdsRequest,
        caller: VerifiedClient,
        patient_id: str | None,
    ) -> list[CdsCard]:
        """Give every card and suggestion a fresh uuid and build the rows that remember them."""
        issued = utcnow()
        rows: list[CdsCard] = []
        for card in response.cards:
            card.uuid = str(uuid.uuid4())
            recommendations: list[dict[str, Any]] = []
            for suggestion in card.suggestions or []:
                suggestion.uuid = str(uuid.uuid4())
                recommendations.append(
                    {
                        "uuid": suggestion.uuid,
                        "label": suggestion.label,
                        "actions": [
                            {"type": a.type, "resourceType": _resource_type(a)}
                            for a in suggestion.actions or []
                        ],
                    }
                )
            topic = card.source.topic
            rows.append(
                CdsCard(
                    uuid=card.uuid,
                    service_id=definition.id,
                    hook=definition.hook,
                    hook_instance=body.hook_instance,
                    client_iss=caller.iss,
                    patient_id=patient_id,
                    issued_at=issued,
                    summary=card.summary,
                    indicator=card.indicator,
                    card_kind=f"{topic.system}|{topic.code}" if topic else "untyped",
                    recommendations=recommendations,
                    suggestion_uuids=[r["uuid"] for r in recommendations],
                    override_reason_codes=[
                        f"{r.system}|{r.code}" for r in card.override_reasons or []
                    ],
                )
            )
        return rows

    def _audit_call(
        self,
        service_id: str,
        *,
        audit: CallAudit,
        started: float,
        status: int,
        rows: list[CdsCard],
        fetched: list[str],
        problem: str | None,
        store_cards: bool = False,
    ) -> None:
        outcome = (
            Outcome.SUCCESS
            if status < 400
            else Outcome.MINOR_FAILURE
            if status < 500
            else Outcome.SERIOUS_FAILURE
        )
        entities: list[AuditEntity] = [
            {"type": "cds-card", "id": r.uuid, "role": r.indicator} for r in rows
        ]
        record: dict[str, Any] = {
            "action": "E",
            "event_type": "cds-hooks.call",
            "event_subtype": service_id[:64],
            "outcome": outcome,
            "outcome_desc": problem,
            "entities": [*entities, *audit.entities],
            "details": {
                "service": service_id,
                "status": status,
                "latency_ms": round((time.monotonic() - started) * 1000, 2),
                "cards": len(rows),
                "prefetch_fetched": fetched,
            },
            **audit.identifiers(),
        }
        records = [*audit.events, record]
        if store_cards and rows:
            values = card_values(rows)

            def write_cards(conn: Connection) -> list[dict[str, Any]]:
                insert_cards(conn, values)
                return records

            self.audit.record_many(write_cards)
        else:
            # One append lock and one commit for the call and what its service produced.
            self.audit.record_many(records)
        audit.events.clear()  # written: a later failure path must not write them twice

    def _audit_fetch(self, event: FetchEvent, service_id: str, audit: CallAudit) -> None:
        self.audit.record(
            action="R",
            event_type="cds-hooks.prefetch",
            event_subtype=service_id[:64],
            outcome=Outcome.SUCCESS if event.ok else Outcome.MINOR_FAILURE,
            outcome_desc=event.reason,
            entities=[{"type": event.resource_type[:64], "role": "prefetch"}],
            details={
                "key": event.key,
                "http_status": event.status,
                "latency_ms": event.latency_ms,
                "pages": event.pages,
            },
            **audit.identifiers(),
        )


def _resource_type(action: Any) -> str | None:
    if action.resource and isinstance(action.resource.get("resourceType"), str):
        return str(action.resource["resourceType"])[:64]
    if action.resource_id:
        return str(action.resource_id).split("/", 1)[0][:64]
    return None
