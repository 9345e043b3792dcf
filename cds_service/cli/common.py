"""What several CLI commands share: the operator recorded in the audit trail, output lines and
the one-line error (``oncocds: error: …``, exit code 2). Stdlib only, so command modules may
import it at module level (CONTRIBUTING: building the parser loads no service library)."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cds_service.errors import OncoCDSError


def operator_id() -> str:
    """The audit trail's agent for a CLI call: ``cli:<login>`` (``cli:unknown`` without one)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def out(line: str) -> None:
    sys.stdout.write(line + "\n")


def fail(exc: OncoCDSError) -> int:
    """One readable line on stderr and exit code 2 (never a stack trace)."""
    sys.stderr.write(f"oncocds: error: {exc.message}\n")
    return 2
