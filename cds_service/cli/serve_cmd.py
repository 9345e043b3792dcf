"""``oncocds serve``: run the API with uvicorn, configured by the environment."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cds_service.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser("serve", help="start the HTTP API (settings from ONCOCDS_*)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from cds_service.app import create_app
    from cds_service.logs import configure_logging

    settings = Settings()
    settings.check_secure()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    base = settings.base_url
    # The start banner (stdout; logs go to stderr): where to find the API.
    sys.stdout.write(
        f"OncoCDS listening on http://{settings.host}:{settings.port}\n"
        f"  OpenAPI docs:          {base}/docs\n"
        f"  CDS Hooks discovery:   {base}/cds-services\n"
        f"  audit review console:  {base}/compliance\n"
        f"  health / readiness:    {base}/healthz  {base}/readyz\n"
    )
    sys.stdout.flush()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )
    return 0
