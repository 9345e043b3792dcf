"""The ``oncocds`` command line.

Each command module exposes ``register(subparsers)`` and sets ``func`` on its parser; a function
returns the exit code. Errors the user can fix are :class:`cds_service.errors.OncoCDSError` and
print as one readable line (``oncocds: error: …``) with exit code 2; nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cds_service.errors import OncoCDSError

if TYPE_CHECKING:
    from pydantic import ValidationError

#: The command modules, by name under ``cds_service.cli`` (adding a command is one line here).
#: Building the parser imports every one of them, so a command module imports at module level
#: only what declaring its arguments needs; whatever a command does is imported inside its
#: handler. That keeps ``oncocds analyze`` or ``oncocds version`` from loading FastAPI,
#: SQLAlchemy, Alembic, uvicorn or the FHIR models (``tests/cds_service/test_cli_imports.py``).
COMMAND_MODULES: tuple[str, ...] = (
    "serve_cmd",
    "db_cmd",
    "version_cmd",
    "audit_cmd",
    "kb_cmd",
    "analyze_cmd",
    "writeback_cmd",
    "devsetup_cmd",
    "devtoken_cmd",
    "demo_cmd",
    "hl7_cmd",
    "compliance_cmd",
    "train_cmd",
    "train_llm_cmd",
    "model_cmd",
    "explain_cmd",
    "jobs_cmd",
    "classify_cmd",
    "worker_cmd",
    "relay_cmd",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="oncocds", description="OncoCDS precision-oncology decision support")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _settings_error_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        field = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"ONCOCDS_{field.upper().replace('.', '__')}: {err.get('msg')}")
    return "invalid settings: " + "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except OncoCDSError as exc:
        _err(f"oncocds: error: {exc.message}")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # pydantic is imported here, not at start-up: only commands that build settings raise it.
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        _err(f"oncocds: error: {_settings_error_line(exc)}")
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
