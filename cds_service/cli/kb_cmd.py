"""``oncocds kb build|info``: compile the knowledge base and describe it.

The builder lives in :mod:`inference.genomics.kb`; this module only parses arguments and prints.
Paths are arguments (defaults: the sources and compiled file inside the installed package,
resolved by the handlers, which import the knowledge-base code themselves).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "kb", help="knowledge base: build from sources, show version and counts"
    )
    kb_sub = parser.add_subparsers(dest="kb_command", required=True)
    build = kb_sub.add_parser("build", help="compile the sources into one JSON file")
    build.add_argument(
        "--sources", type=Path, default=None, help="sources directory (default: packaged)"
    )
    build.add_argument(
        "--output", type=Path, default=None, help="compiled file (default: packaged)"
    )
    build.set_defaults(func=_build)
    info = kb_sub.add_parser("info", help="print version, sources and counts")
    info.add_argument("--kb", type=Path, default=None, help="compiled file (default: packaged)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_info)


def _fail(message: str) -> int:
    sys.stderr.write(f"oncocds: error: {message}\n")
    return 2


def _build(args: argparse.Namespace) -> int:
    from inference.errors import KnowledgeBaseError
    from inference.genomics.kb import DEFAULT_KB_PATH, write_knowledge_base

    sources = args.sources or DEFAULT_KB_PATH.parent.parent / "sources"
    output = args.output or DEFAULT_KB_PATH
    try:
        data = write_knowledge_base(sources, output)
    except KnowledgeBaseError as exc:
        return _fail(exc.message)
    except OSError as exc:
        return _fail(f"cannot write {output}: {exc.strerror}")
    sys.stdout.write(f"built {output} version {data['version']}\n")
    return 0


def _info(args: argparse.Namespace) -> int:
    from inference.errors import KnowledgeBaseError
    from inference.genomics.kb import DEFAULT_KB_PATH, read_knowledge_base

    try:
        kb = read_knowledge_base(args.kb or DEFAULT_KB_PATH)
    except KnowledgeBaseError as exc:
        return _fail(exc.message)
    if args.json:
        payload = {"version": kb.version, "sources": kb.sources, "counts": kb.counts}
        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return 0
    lines = [f"version: {kb.version}", "sources:"]
    for source in kb.sources:
        lines.append(f"  {source['name']} release {source['release']} ({source['licence']})")
        if source.get("attribution"):
            lines.append(f"    attribution: {source['attribution']}")
        lines.extend(
            f"    {name} sha256 {digest}" for name, digest in sorted(source["files"].items())
        )
    lines.append("counts:")
    for name, value in kb.counts.items():
        lines.append(f"  {name}: {value}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
