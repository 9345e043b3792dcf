"""The PostgreSQL group-commit store of the listener: one statement for everything queued,
duplicates answered with the stored ACK, and a lost database connection failing the batch
(never a positive ACK) and reconnecting."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime

import pytest
from sqlalchemy import Engine, select, text

from cds_service.db.base import utcnow
from cds_service.db.engine import make_engine
from cds_service.errors import DatabaseError
from cds_service.hl7.repository import NewMessage
from cds_service.hl7.store import PostgresGroupCommitStore
from cds_service.models.hl7 import Hl7InboxMessage
from tests.hl7_support import make_oru, running_listener

pytestmark = pytest.mark.db


def _message(control_id: str, now: datetime) -> NewMessage:
    return NewMessage(
        sending_application="LAB",
        sending_facility="FAC",
        control_id=control_id,
        message_type="ORU^R01^ORU_R01",
        version="2.5.1",
        charset="utf-8",
        accept_ack_type="",
        application_ack_type="",
        raw=make_oru(control_id),
        received_at=now,
        remote_addr="127.0.0.1",
        status="received",
        last_error=None,
        ack=f"ACK-{control_id}".encode(),
    )


@pytest.fixture
def pg_engine(pg_url: str) -> Engine:
    return make_engine(pg_url, pool_size=2)


def test_concurrent_callers_share_one_commit(pg_engine: Engine) -> None:
    async def scenario() -> tuple[list[list[bool]], int, int]:
        store = PostgresGroupCommitStore.for_engine(pg_engine)
        now = utcnow()
        try:
            # Queued in the same loop turn: the writer takes all of them into one statement.
            results = await asyncio.gather(
                *(
                    store.store_many([_message(f"G{i}", now), _message("SHARED", now)])
                    for i in range(5)
                )
            )
        finally:
            await store.close()
        return (
            [[r.duplicate for r in batch] for batch in results],
            store.commits,
            store.group_commits,
        )

    duplicates, commits, group_commits = asyncio.run(scenario())
    assert (commits, group_commits) == (1, 1)
    # SHARED is stored once (by the first caller); everyone else gets it as a duplicate.
    assert duplicates == [[False, False]] + [[False, True]] * 4
    with pg_engine.connect() as conn:
        rows = conn.execute(
            select(Hl7InboxMessage.control_id, Hl7InboxMessage.next_attempt_at)
        ).all()
    assert sorted(r[0] for r in rows) == ["G0", "G1", "G2", "G3", "G4", "SHARED"]
    assert all(r[1] is not None for r in rows)
    pg_engine.dispose()


def test_duplicate_of_a_stored_message_gets_its_stored_ack(pg_engine: Engine) -> None:
    async def scenario() -> list[tuple[bool, bytes | None]]:
        store = PostgresGroupCommitStore.for_engine(pg_engine)
        try:
            first = await store.store_many([_message("D1", utcnow())])
            resend = dataclasses.replace(_message("D1", utcnow()), ack=b"a different ACK")
            second = await store.store_many([resend])
        finally:
            await store.close()
        return [(r.duplicate, r.ack) for r in first + second]

    assert asyncio.run(scenario()) == [(False, b"ACK-D1"), (True, b"ACK-D1")]
    pg_engine.dispose()


def test_lost_connection_fails_the_batch_then_reconnects(pg_engine: Engine) -> None:
    async def scenario() -> tuple[str, bool]:
        store = PostgresGroupCommitStore.for_engine(pg_engine)
        try:
            await store.store_many([_message("C1", utcnow())])
            with pg_engine.connect() as conn:  # an administrator (or a failover) cuts it
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            try:
                await store.store_many([_message("C2", utcnow())])
                outcome = "stored"
            except DatabaseError:
                outcome = "failed"
            retried = await store.store_many([_message("C2", utcnow())])
        finally:
            await store.close()
        return outcome, retried[0].duplicate

    outcome, duplicate = asyncio.run(scenario())
    assert outcome == "failed"
    assert duplicate is False  # the failed statement stored nothing; the resend did
    pg_engine.dispose()


def test_listener_answers_ae_when_postgresql_is_unreachable(pg_engine: Engine) -> None:
    # Nothing listens on port 1.
    unreachable = PostgresGroupCommitStore(
        pg_engine.url.set(drivername="postgresql", port=1).render_as_string(hide_password=False)
    )
    with running_listener(pg_engine, store=unreachable) as listener:
        ack = listener.client().request(make_oru("UNREACH1"))
    assert (ack.code, ack.acked_control_id) == ("AE", "UNREACH1")
    with pg_engine.connect() as conn:
        assert conn.execute(select(Hl7InboxMessage.id)).first() is None
    pg_engine.dispose()
