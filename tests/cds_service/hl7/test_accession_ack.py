"""A RefSeq accession of the other genome build (issue 13 §4) reaches the sender as an AE
application ACK with an ERR segment saying why, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cds_service.audit import AuditTrail
from cds_service.db.base import utcnow
from cds_service.hl7.processing import GeneticResultProcessor
from cds_service.hl7.repository import InboxRepository, NewMessage
from cds_service.hl7.worker import Worker
from cds_service.models.hl7 import Hl7InboxMessage
from cds_service.settings import Hl7Settings
from tests.hl7_support import make_oru, parse_ack, run_hl7_jobs


def _application_ack(engine: Engine, raw: bytes, control_id: str) -> bytes:
    repo = InboxRepository(engine)
    message_id = repo.store(
        NewMessage(
            sending_application="MOLPATH_LIS",
            sending_facility="EXAMPLE_LAB",
            control_id=control_id,
            message_type="ORU^R01^ORU_R01",
            version="2.5.1",
            charset="utf-8",
            accept_ack_type="AL",
            application_ack_type="AL",
            raw=raw,
            received_at=utcnow(),
            remote_addr="127.0.0.1",
            status="received",
            last_error=None,
            ack=b"MSH|...",
        )
    ).id
    worker = Worker(
        repo,
        GeneticResultProcessor(),
        Hl7Settings(worker_in_process=False),
        audit=AuditTrail(engine, source_observer="test"),
    )
    run_hl7_jobs(engine, worker)
    with Session(engine) as session:
        row = session.get(Hl7InboxMessage, message_id)
        assert row is not None
        assert row.application_ack is not None
        return row.application_ack


def test_accession_of_the_other_build_gives_ae_with_err(engine: Engine) -> None:
    raw = make_oru("ACC1", accept_ack="AL", app_ack="AL").replace(
        b"|2a|NC_000007.14|", b"|2a|NC_000007.13|"
    )
    ack = parse_ack(_application_ack(engine, raw, "ACC1"))
    assert (ack.code, ack.acked_control_id) == ("AE", "ACC1")
    err = "|".join(ack.segments["ERR"])
    assert "contradicts RefSeq NC_000007.13 (GRCh37)" in err


def test_accession_of_the_stated_build_gives_aa(engine: Engine) -> None:
    ack = parse_ack(
        _application_ack(engine, make_oru("ACC2", accept_ack="AL", app_ack="AL"), "ACC2")
    )
    assert (ack.code, ack.acked_control_id) == ("AA", "ACC2")
    assert "ERR" not in ack.segments
