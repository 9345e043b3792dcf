"""``oncocds compliance dev-token``: a bearer token from the development OIDC issuer."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cds_service.cli.common import out as _out
from cds_service.cli.devtoken_cmd import RoleChoices


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def register(sub: Any) -> None:
    parser = sub.add_parser("compliance", help="compliance console helpers")
    comp_sub = parser.add_subparsers(dest="compliance_command", required=True)
    token = comp_sub.add_parser(
        "dev-token", help="print a development bearer token (refused in production)"
    )
    token.add_argument(
        "--role",
        choices=RoleChoices(),
        metavar="ROLE",
        default="compliance",
        help="%(choices)s (default %(default)s)",
    )
    token.add_argument("--subject", default=None, help="the token's sub (default dev-<role>)")
    token.add_argument("--ttl", type=int, default=900, help="lifetime in seconds (max 3600)")
    token.set_defaults(func=_dev_token)


def _dev_token(args: argparse.Namespace) -> int:
    from cds_service.compliance.devtoken import mint_dev_token
    from cds_service.settings import Settings

    settings = Settings()
    ttl = max(60, min(args.ttl, settings.compliance.max_token_lifetime_seconds))
    _out(mint_dev_token(settings, role=args.role, subject=args.subject, ttl_seconds=ttl))
    return 0
