"""Job kinds for the job tests (registered on import; workers in other processes import this
module through ``ONCOCDS_JOBS__EXTRA_MODULES``).

Every handler appends one line per run to the file named in the payload (``O_APPEND`` writes of
one short line are atomic), so that a test counts runs across threads and processes without
asking the code under test.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from cds_service.jobs import JobContext, PermanentJobError, RetryableJobError, job_kind

MODULE = __name__


def log_run(ctx: JobContext, payload: dict[str, Any]) -> None:
    line = json.dumps(
        {"job": ctx.job_id, "key": ctx.key, "attempt": ctx.attempt, "pid": os.getpid()}
    )
    with Path(payload["log"]).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def runs(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


@job_kind("test.echo", queue="default", max_attempts=3, time_limit_s=60, backoff_base_s=0.0)
def echo(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    log_run(ctx, payload)
    if payload.get("sleep"):
        time.sleep(float(payload["sleep"]))
    return {"echo": payload.get("value"), "attempt": ctx.attempt}


@job_kind("test.flaky", queue="default", max_attempts=3, time_limit_s=60, backoff_base_s=0.0)
def flaky(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Fails (with a message quoting a made-up patient name) until ``unless_exists`` exists, or
    on the first ``fail_times`` attempts."""
    log_run(ctx, payload)
    marker = payload.get("unless_exists")
    if marker is not None and not Path(marker).exists():
        raise RuntimeError("could not read the chart of Jane Testpatient")
    if ctx.attempt <= int(payload.get("fail_times", 0)):
        raise RuntimeError("could not read the chart of Jane Testpatient")
    return {"attempt": ctx.attempt}


@job_kind("test.permanent", queue="default", max_attempts=5, time_limit_s=60, backoff_base_s=0.0)
def permanent(ctx: JobContext, payload: dict[str, Any]) -> None:
    log_run(ctx, payload)
    raise PermanentJobError("unsupported content type image/x-test")


@job_kind("test.transient", queue="default", max_attempts=2, time_limit_s=60, backoff_base_s=0.0)
def transient(ctx: JobContext, payload: dict[str, Any]) -> None:
    log_run(ctx, payload)
    raise RetryableJobError("PACS timed out after 5 s (pacs.example.org)")


@job_kind(
    "test.slow_backoff",
    queue="default",
    max_attempts=3,
    time_limit_s=60,
    backoff_base_s=3600.0,
    backoff_cap_s=7200.0,
)
def slow_backoff(ctx: JobContext, payload: dict[str, Any]) -> None:
    log_run(ctx, payload)
    raise RuntimeError("always")


@job_kind(
    "test.retry_after",
    queue="default",
    max_attempts=3,
    time_limit_s=60,
    backoff_base_s=3600.0,
    backoff_cap_s=7200.0,
)
def retry_after(ctx: JobContext, payload: dict[str, Any]) -> None:
    """A handler that knows when to try again (a peer's Retry-After): 42 s, not the backoff."""
    log_run(ctx, payload)
    raise RetryableJobError("rate limited by pacs.example.org", retry_after_s=42.0)
