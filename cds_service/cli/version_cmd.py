"""``oncocds version``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cds_service import __version__


def register(sub: Any) -> None:
    parser = sub.add_parser("version", help="print the OncoCDS version")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(f"oncocds {__version__}\n")
    return 0
