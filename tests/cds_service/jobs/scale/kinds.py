"""Job kinds for the Celery tests (registered on import; worker processes import this module
through ``ONCOCDS_JOBS__EXTRA_MODULES``).

``celery-test.effect`` appends a ``start`` line when it begins and a ``done`` line when it has
finished, to the file named in the payload (``O_APPEND`` writes of one short line are atomic):
a test counts completed runs per job across processes without asking the code under test. Its
time limit is short so that the lease of a killed worker's claim runs out within the test.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from cds_service.jobs import JobContext, job_kind

MODULE = __name__
#: Short, so that a killed worker's claim (time limit + lease grace) lapses within seconds.
TIME_LIMIT_S = 4.0


def _line(payload: dict[str, Any], ctx: JobContext, event: str) -> None:
    record = {"key": ctx.key, "attempt": ctx.attempt, "pid": os.getpid(), "event": event}
    with Path(payload["log"]).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


@job_kind(
    "celery-test.effect",
    queue="default",
    max_attempts=10,
    time_limit_s=TIME_LIMIT_S,
    backoff_base_s=0.0,
)
def effect(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    _line(payload, ctx, "start")
    time.sleep(float(payload.get("sleep", 0)))
    _line(payload, ctx, "done")
    return {"attempt": ctx.attempt}


def events(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
