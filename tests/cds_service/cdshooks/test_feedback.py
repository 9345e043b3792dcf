"""Feedback (CDS Hooks 2.0 §Feedback) stored idempotently, the governance summary, and the
database-backed jti replay store: on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from cds_service.db.engine import make_engine
from cds_service.models.cdshooks import CdsFeedback
from cds_service.models.security import JwtReplay
from cds_service.security.replay import ReplayStore
from tests.cds_service.cdshooks.conftest import CdsClient

DATA = Path(__file__).resolve().parents[2] / "data" / "cdshooks"
SELECT = "test-order-select"
SIGN = "test-order-sign"


@pytest.fixture
def cds_db(make_cds_client: Any, database_url: str) -> CdsClient:
    client: CdsClient = make_cds_client(database_url=database_url)
    return client


def _issue(cds: CdsClient, name: str = "order-select") -> dict[str, Any]:
    body = json.loads((DATA / f"{name}.request.json").read_text())
    service = body.pop("_service")
    response = cds.call(service, body)
    assert response.status_code == 200
    card: dict[str, Any] = response.json()["cards"][0]
    return card


def _accepted(card: dict[str, Any], when: str = "2026-11-23T10:00:00Z") -> dict[str, Any]:
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": when,
    }


def _overridden(card: dict[str, Any], code: str | None, comment: str | None = None) -> dict:
    reason: dict[str, Any] = {}
    if code:
        reason["reason"] = {"system": "urn:oncocds:override", "code": code, "display": code}
    if comment:
        reason["userComment"] = comment
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-23T10:05:00.52+01:00",
    }
    if reason:
        item["overrideReason"] = reason
    return item


def _count(cds: CdsClient, model: Any = CdsFeedback) -> int:
    engine = create_engine(cds.settings.database_url)
    with engine.connect() as conn:
        value = int(conn.execute(select(func.count()).select_from(model)).scalar_one())
    engine.dispose()
    return value


def test_same_feedback_twice_is_one_row(cds_db: CdsClient) -> None:
    card = _issue(cds_db)
    first = cds_db.feedback(SELECT, {"feedback": [_accepted(card)]})
    assert first.status_code == 200, first.text
    assert first.json() == {"stored": 1, "duplicates": 0}
    again = cds_db.feedback(SELECT, {"feedback": [_accepted(card), _accepted(card)]})
    assert again.json() == {"stored": 0, "duplicates": 2}
    assert _count(cds_db) == 1
    # The same instant written with another offset is the same feedback.
    shifted = _accepted(card, when="2026-11-23T11:00:00+01:00")
    assert cds_db.feedback(SELECT, {"feedback": [shifted]}).json()["duplicates"] == 1
    audits = cds_db.audit_rows("cds-hooks.feedback")
    assert len(audits) == 4
    assert [a.outcome_desc for a in audits] == [None, "duplicate", "duplicate", "duplicate"]
    assert audits[0].patient_id == "1288992"


def test_unknown_card_is_404_and_nothing_of_the_batch_is_stored(cds_db: CdsClient) -> None:
    card = _issue(cds_db)
    unknown = {**_accepted(card), "card": "00000000-0000-4000-8000-000000000000"}
    response = cds_db.feedback(SELECT, {"feedback": [_accepted(card), unknown]})
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert _count(cds_db) == 0


def test_card_of_another_service_is_404(cds_db: CdsClient) -> None:
    card = _issue(cds_db)
    assert cds_db.feedback(SIGN, {"feedback": [_accepted(card)]}).status_code == 404


@pytest.mark.parametrize(
    "item",
    [
        {"outcome": "accepted", "outcomeTimestamp": "2026-11-23T10:00:00Z"},
        {"outcome": "maybe", "outcomeTimestamp": "2026-11-23T10:00:00Z"},
        {"outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00"},
        {"outcome": "overridden", "outcomeTimestamp": "yesterday"},
        {"outcome": "overridden", "overrideReason": {}, "outcomeTimestamp": "2026-11-23T10:00:00Z"},
    ],
    ids=["accepted-without-suggestions", "bad-outcome", "naive-time", "bad-time", "empty-reason"],
)
def test_invalid_feedback_is_400(cds_db: CdsClient, item: dict[str, Any]) -> None:
    card = _issue(cds_db)
    response = cds_db.feedback(SELECT, {"feedback": [{"card": card["uuid"], **item}]})
    assert response.status_code == 400


def test_accepting_a_suggestion_the_card_did_not_offer_is_400(cds_db: CdsClient) -> None:
    card = _issue(cds_db)
    item = {**_accepted(card), "acceptedSuggestions": [{"id": "not-on-card"}]}
    assert cds_db.feedback(SELECT, {"feedback": [item]}).status_code == 400
    assert _count(cds_db) == 0


def test_summary_counts_per_service_and_card_kind(cds_db: CdsClient) -> None:
    a, b, c, d = (_issue(cds_db) for _ in range(4))
    signed = _issue(cds_db, "order-sign")
    items = [
        _accepted(a),
        _overridden(b, "not-indicated", comment="Patient Jane declined"),
        _overridden(c, "not-indicated"),
        _overridden(d, "already-done"),
    ]
    assert cds_db.feedback(SELECT, {"feedback": items}).json()["stored"] == 4
    sign_item = {**_accepted(signed), "outcomeTimestamp": "2026-10-01T00:00:00Z"}
    assert cds_db.feedback(SIGN, {"feedback": [sign_item]}).json()["stored"] == 1

    everything = cds_db.summary()
    assert everything.status_code == 200, everything.text
    rows = {(r["service"], r["cardKind"]): r for r in everything.json()["rows"]}
    select_row = rows[(SELECT, "urn:oncocds:card-kind|test-order")]
    assert select_row["accepted"] == 1
    assert select_row["overridden"] == 3
    assert select_row["userComments"] == 1
    assert select_row["overrideReasons"] == [
        {
            "system": "urn:oncocds:override",
            "code": "not-indicated",
            "display": "not-indicated",
            "count": 2,
        },
        {
            "system": "urn:oncocds:override",
            "code": "already-done",
            "display": "already-done",
            "count": 1,
        },
    ]
    assert rows[(SIGN, "untyped")]["accepted"] == 1
    assert "Jane" not in everything.text  # free-text comments are never kept

    only_select = cds_db.summary(service=SELECT).json()["rows"]
    assert {r["service"] for r in only_select} == {SELECT}
    november = cds_db.summary(since="2026-11-01T00:00:00Z", until="2026-12-01T00:00:00Z")
    assert {r["service"] for r in november.json()["rows"]} == {SELECT}
    october = cds_db.summary(since="2026-10-01T00:00:00Z", until="2026-11-01T00:00:00Z")
    assert [(r["service"], r["accepted"]) for r in october.json()["rows"]] == [(SIGN, 1)]
    assert cds_db.summary(since="2026-11-01T00:00:00").status_code == 400


def test_replay_store_is_shared_and_purged(database_url: str) -> None:
    engine_a = make_engine(database_url)
    engine_b = make_engine(database_url)  # a second worker process's engine
    try:
        now = datetime.now(tz=UTC)
        a, b = ReplayStore(engine_a), ReplayStore(engine_b)
        assert a.check_and_store("iss", "jti-1", expires_at=now + timedelta(minutes=5))
        assert not b.check_and_store("iss", "jti-1", expires_at=now + timedelta(minutes=5))
        assert b.check_and_store("other-iss", "jti-1", expires_at=now + timedelta(minutes=5))
        assert a.check_and_store("iss", "old", expires_at=now - timedelta(seconds=1))
        assert a.purge() == 1
        with engine_a.connect() as conn:
            remaining = conn.execute(select(func.count()).select_from(JwtReplay)).scalar_one()
        assert remaining == 2
    finally:
        engine_a.dispose()
        engine_b.dispose()
