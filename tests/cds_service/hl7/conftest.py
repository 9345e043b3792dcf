"""Fixtures for the HL7 service tests: an engine per database and a running listener."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from cds_service.db.engine import make_engine
from cds_service.settings import Hl7Settings
from tests.hl7_support import RunningListener, running_listener


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=4)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def listener(engine: Engine) -> Iterator[RunningListener]:
    with running_listener(engine) as running:
        yield running


@pytest.fixture
def sqlite_listener(sqlite_engine: Engine) -> Iterator[RunningListener]:
    with running_listener(
        sqlite_engine, Hl7Settings(worker_in_process=False, max_frame_bytes=4096)
    ) as running:
        yield running
