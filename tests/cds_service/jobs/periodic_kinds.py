"""A periodic kind for the cross-process schedule test only (loaded through
``ONCOCDS_JOBS__EXTRA_MODULES`` by the processes that test starts): every 0.5 s it appends a
line to the file ``ONCOCDS_TEST_TICK_LOG`` names."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cds_service.jobs import JobContext, job_kind

if TYPE_CHECKING:
    from cds_service.settings import Settings

INTERVAL_S = 0.5


def _every(settings: Settings) -> float:
    # Registered process-wide once imported: only executors configured with this module tick it.
    return INTERVAL_S if __name__ in settings.jobs.extra_modules else 0.0


@job_kind("test.tick", queue="maintenance", max_attempts=1, time_limit_s=30, every=_every)
def tick(ctx: JobContext, payload: dict[str, Any]) -> None:
    with Path(os.environ["ONCOCDS_TEST_TICK_LOG"]).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"job": ctx.job_id, "key": ctx.key, "pid": os.getpid()}) + "\n")
