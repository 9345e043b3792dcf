"""CDS Hooks feedback (CDS Hooks 2.0 §Feedback): storing a client's card outcomes idempotently,
and the accept/override summary the governance committee reads.

Every feedback item is audited (``cds-hooks.feedback``) *before* the rows are flushed: SQLite has
a single writer, and a flushed, uncommitted request session would hold the write lock the audit
append needs (CONTRIBUTING, Database).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from cds_service.audit import AuditTrail
from cds_service.audit.service import Outcome
from cds_service.cdshooks.call_audit import CallMeta
from cds_service.cdshooks.repository import CardRepository
from cds_service.cdshooks.schemas import (
    FeedbackItem,
    FeedbackResponse,
    FeedbackSummary,
    FeedbackSummaryRow,
    OverrideReasonCount,
)
from cds_service.db.base import utcnow
from cds_service.errors import BadRequestError, NotFoundError
from cds_service.models.cdshooks import CdsCard, CdsFeedback
from cds_service.security.jwt import VerifiedClient


def store_feedback(  # noqa: PLR0917 - the endpoint's inputs, one each
    audit: AuditTrail,
    service_id: str,
    items: list[FeedbackItem],
    caller: VerifiedClient,
    session: Session,
    meta: CallMeta,
) -> FeedbackResponse:
    """Store feedback idempotently (an identical item again is one row).

    Raises:
        NotFoundError: a card uuid this client was not issued by this service.
        BadRequestError: an accepted suggestion id the card did not carry.
    """
    repo = CardRepository(session)
    cards: list[CdsCard] = []
    for item in items:
        card = repo.get_card(item.card)
        if card is None or card.service_id != service_id or card.client_iss != caller.iss:
            _audit_feedback(
                audit,
                service_id,
                caller=caller,
                meta=meta,
                item=item,
                card=None,
                problem="unknown card",
            )
            raise NotFoundError(f"unknown card {item.card!r} for service {service_id!r}")
        accepted = {s.id for s in item.accepted_suggestions or []}
        if not accepted <= set(card.suggestion_uuids):
            _audit_feedback(
                audit,
                service_id,
                caller=caller,
                meta=meta,
                item=item,
                card=card,
                problem="unknown suggestion",
            )
            raise BadRequestError(f"acceptedSuggestions not on card {item.card!r}")
        cards.append(card)
    rows: list[CdsFeedback] = []
    seen: set[str] = set()
    for item, card in zip(items, cards, strict=True):
        row = _feedback_row(service_id, caller.iss, item, card)
        duplicate = row.fingerprint in seen or repo.feedback_exists(row.fingerprint)
        seen.add(row.fingerprint)
        if not duplicate:
            rows.append(row)
        # Audited before the rows are flushed (SQLite single writer; see the module docstring).
        _audit_feedback(
            audit,
            service_id,
            caller=caller,
            meta=meta,
            item=item,
            card=card,
            problem="duplicate" if duplicate else None,
        )
    stored = repo.add_feedback(rows)
    return FeedbackResponse(stored=stored, duplicates=len(items) - stored)


def _audit_feedback(
    audit: AuditTrail,
    service_id: str,
    *,
    caller: VerifiedClient,
    meta: CallMeta,
    item: FeedbackItem,
    card: CdsCard | None,
    problem: str | None,
) -> None:
    failed = problem not in (None, "duplicate")
    audit.record(
        action="C",
        event_type="cds-hooks.feedback",
        event_subtype=service_id[:64],
        outcome=Outcome.MINOR_FAILURE if failed else Outcome.SUCCESS,
        outcome_desc=problem,
        agent_who=caller.iss,
        tenant=caller.tenant,
        patient_id=card.patient_id if card else None,
        hook_instance=card.hook_instance if card else None,
        entities=[{"type": "cds-card", "id": item.card[:64]}],
        request_id=meta.request_id,
        remote_addr=meta.remote_addr,
        details={"service": service_id, "outcome": item.outcome},
    )


def feedback_summary(
    session: Session, *, service: str | None, since: datetime | None, until: datetime | None
) -> FeedbackSummary:
    """Accept/override counts and override reasons per service and card kind."""
    rows = CardRepository(session).feedback_counts(service=service, since=since, until=until)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    reasons: dict[tuple[str, str], dict[tuple[str | None, ...], int]] = defaultdict(dict)
    for svc, kind, outcome, system, code, display, comments, count in rows:
        group = groups.setdefault((svc, kind), {"accepted": 0, "overridden": 0, "user_comments": 0})
        group[outcome] += int(count)
        group["user_comments"] += int(comments or 0)
        if outcome == "overridden":
            key = (system, code, display)
            reasons[(svc, kind)][key] = reasons[(svc, kind)].get(key, 0) + int(count)
    result = [
        FeedbackSummaryRow(
            service=svc,
            card_kind=kind,
            accepted=g["accepted"],
            overridden=g["overridden"],
            user_comments=g["user_comments"],
            override_reasons=[
                OverrideReasonCount(system=s, code=c, display=d, count=n)
                for (s, c, d), n in sorted(
                    reasons[(svc, kind)].items(), key=lambda kv: (-kv[1], str(kv[0]))
                )
            ],
        )
        for (svc, kind), g in sorted(groups.items())
    ]
    return FeedbackSummary(since=since, until=until, rows=result)


def _feedback_row(service_id: str, iss: str, item: FeedbackItem, card: CdsCard) -> CdsFeedback:
    reason = item.override_reason.reason if item.override_reason else None
    return CdsFeedback(
        id=str(uuid.uuid4()),
        fingerprint=_fingerprint(iss, item),
        card_uuid=card.uuid,
        service_id=service_id,
        client_iss=iss,
        outcome=item.outcome,
        outcome_timestamp=item.outcome_timestamp.astimezone(UTC),
        received_at=utcnow(),
        accepted_suggestions=sorted(s.id for s in item.accepted_suggestions or []),
        override_reason_system=reason.system if reason else None,
        override_reason_code=reason.code if reason else None,
        override_reason_display=reason.display if reason else None,
        has_user_comment=bool(item.override_reason and item.override_reason.user_comment),
    )


def _fingerprint(iss: str, item: FeedbackItem) -> str:
    data = item.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["outcomeTimestamp"] = item.outcome_timestamp.astimezone(UTC).isoformat()
    if "acceptedSuggestions" in data:
        data["acceptedSuggestions"] = sorted(s["id"] for s in data["acceptedSuggestions"])
    canonical = json.dumps({"iss": iss, "item": data}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
