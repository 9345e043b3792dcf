"""``oncocds serve``: run the API with uvicorn, configured by the environment."""

from __future__ import annotations

import argparse
import gc
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cds_service.settings import Settings

#: CPython hands the GIL over every 5 ms by default. A request waiting on the database gets
#: it back only after whichever thread holds it has run that long, so under 32 concurrent
#: hook calls each call queued behind the others' CPU bursts; 0.5 ms gave 1.25-1.4x the
#: throughput for the bare endpoint and for patient-view alike (bench/bench_patient_view.py).
SWITCH_INTERVAL_S = 0.0005
#: Allocations between young-generation collections in a serving process (default 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_interpreter() -> None:
    """Process-wide settings for serving (through :func:`serving_app`)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def settle_process() -> None:
    """Load what every call uses, then exempt it from garbage collection (``gc.freeze``).

    Called once the app is built in a serving process (:func:`serving_app`), never in tests:
    frozen objects are still freed by reference counting, but cycles among them are never
    collected. The knowledge base and the imported FHIR model classes are a few hundred
    thousand long-lived objects; without this each full collection walks them all, a cost that
    fell on whichever request happened to allocate at the time (a patient-view's report Bundle
    build took 16-28 ms with them tracked, 10-11 ms frozen).

    A new-patient call allocates a few hundred thousand short-lived objects (FHIR models, the
    report Bundle); with CPython's default 700-allocation threshold that is hundreds of young
    collections per call, each walking whatever the call holds at the time. At 50,000 there
    are a few (-10 % time per new-patient patient-view, in process).
    """
    from inference.genomics import load_knowledge_base

    load_knowledge_base()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def serving_app(settings: Settings, **create_options: Any) -> Any:
    """The app as a serving process runs it: interpreter tuned, app built, process settled.

    ``create_options`` go to :func:`cds_service.app.create_app` (the benchmarks add their bare
    baseline endpoint and services this way, so they measure what ``serve`` runs).
    """
    from cds_service.app import create_app

    tune_interpreter()
    app = create_app(settings, **create_options)
    settle_process()
    return app


def build_app() -> Any:
    """uvicorn factory for each worker process: settings from the environment."""
    from cds_service.logs import configure_logging
    from cds_service.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return serving_app(settings)


def register(sub: Any) -> None:
    parser = sub.add_parser("serve", help="start the HTTP API (settings from ONCOCDS_*)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from cds_service.errors import BadRequestError
    from cds_service.logs import configure_logging
    from cds_service.settings import Settings

    if args.workers < 1:
        raise BadRequestError("--workers must be at least 1")
    settings = Settings()
    settings.check_secure()  # refuse here, once, before any worker starts
    configure_logging(settings.log_level, settings.log_format)
    base = settings.base_url
    # The start banner (stdout; logs go to stderr): where to find the API.
    sys.stdout.write(
        f"OncoCDS listening on http://{settings.host}:{settings.port}\n"
        f"  OpenAPI docs:          {base}/docs\n"
        f"  CDS Hooks discovery:   {base}/cds-services\n"
        f"  audit review console:  {base}/compliance\n"
        f"  health / readiness:    {base}/healthz  {base}/readyz\n"
    )
    if not settings.is_production:
        # A newcomer's first step: cards for a synthetic patient, no request written by hand.
        program = sys.argv[0] if sys.argv and sys.argv[0].endswith("oncocds") else "oncocds"
        sys.stdout.write(f"  see it work:           {program} demo   (in another terminal)\n")
    sys.stdout.flush()
    uvicorn.run(
        "cds_service.cli.serve_cmd:build_app",
        factory=True,
        workers=args.workers,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )
    return 0
