"""A card never waits for an explanation (issue 16 item 4): the real ``oncology-genomics``
service on the demo patient answers the same cards with the LLM on, against a model server
that hangs, as with it off; the explanation follows as an ``llm.explain`` job run by the
in-process executor, and ends in the template when the read timeout fires.

The hanging server is the Ollama-API test server (``tests/support/ollama_server.py``), a
stand-in at the network edge (no Ollama binary can be installed here).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cds_service.cdshooks.services import BUILTIN_SERVICES
from cds_service.models import Explanation
from cds_service.models.jobs import BackgroundJob
from tests.cds_service.cdshooks.conftest import (
    CdsClient,
    es_key,
    make_cds_client,
    rs_key,
    write_clients,
)
from tests.support.cards_golden import normalise
from tests.support.ollama_server import OllamaTestServer

__all__ = ["es_key", "make_cds_client", "rs_key", "write_clients"]  # fixtures used here

SCENARIO = (
    Path(__file__).resolve().parents[2]
    / "data"
    / "cdshooks"
    / "scenarios"
    / "issue12-demo-patient-view"
    / "request.json"
)


@pytest.fixture
def hanging_server() -> Iterator[OllamaTestServer]:
    with OllamaTestServer.start(model=False) as server:
        server.hang()
        yield server


def _call(cds: CdsClient) -> Any:
    body = json.loads(SCENARIO.read_text())
    service = body.pop("_service")
    answer = cds.call(service, body)
    assert answer.status_code == 200, answer.text
    return normalise(answer.json(), base_url=cds.settings.base_url)


def test_card_is_unaffected_and_the_explanation_follows_as_a_job(
    make_cds_client: Callable[..., CdsClient],
    hanging_server: OllamaTestServer,
) -> None:
    off = make_cds_client(services=BUILTIN_SERVICES)
    on = make_cds_client(
        services=BUILTIN_SERVICES,
        llm={
            "enabled": True,
            "url": hanging_server.url,
            "model": hanging_server.model_name,
            "digest": hanging_server.digest,
            "read_timeout_s": 1.0,
        },
        jobs={"poll_seconds": 0.05},
    )
    cards_off = _call(off)
    cards_on = _call(on)
    assert cards_on == cards_off
    assert cards_on["cards"], "the demo patient has cards"
    factory = on.http.app.state.sessionmaker  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while True:  # the job creates the explanation row, then fills it
        with factory() as session:
            job = session.scalars(
                select(BackgroundJob).where(BackgroundJob.kind == "llm.explain")
            ).one()
            if job.status in ("succeeded", "dead") or time.monotonic() > deadline:
                row = session.scalars(select(Explanation)).one()
                break
        time.sleep(0.1)
    assert row.status == "ready"
    assert row.source == "template"
    assert row.fallback_reason == "model answer not used: timeout"
    assert job.key == f"llm:analysis:{row.subject_id}"
    assert job.status == "succeeded"
    assert len(hanging_server.requests) == 1
