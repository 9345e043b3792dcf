"""A warm worker resource for the ``oncocds worker`` test (imported by the worker process
through ``ONCOCDS_JOBS__EXTRA_MODULES``): its factory appends the building process's pid to
``ONCOCDS_TEST_WARM_LOG``, so the test sees it built without asking the code under test."""

from __future__ import annotations

import os
from pathlib import Path

from cds_service.jobs import worker_resource
from cds_service.settings import Settings

MODULE = __name__


@worker_resource(
    "test.warm_process",
    warm_for=("default",),
    warm_if=lambda s: "ONCOCDS_TEST_WARM_LOG" in os.environ,
)
def _build(settings: Settings) -> object:
    with Path(os.environ["ONCOCDS_TEST_WARM_LOG"]).open("a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    return object()
