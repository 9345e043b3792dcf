"""``python -m training llm pairs CONFIG`` and ``python -m training llm train CONFIG``.

``pairs`` writes the instruction pairs (JSONL + manifest) only; ``train`` runs the whole
fine-tuning (pairs, evaluation before, LoRA, evaluation after, export) and prints the
before/after figures. Progress goes to stderr as JSON lines (or a loss line on a terminal).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    llm = sub.add_parser("llm", help="LoRA fine-tuning of the explanation model (issue 16)")
    commands = llm.add_subparsers(dest="llm_command", required=True)
    pairs = commands.add_parser("pairs", help="write the instruction pairs and their manifest")
    pairs.add_argument("config", type=Path, help="TOML config (see training/llm/config.py)")
    train = commands.add_parser("train", help="pairs, evaluate, LoRA, evaluate, export")
    train.add_argument("config", type=Path, help="TOML config (see training/llm/config.py)")
    train.add_argument("--progress", choices=("auto", "bar", "json", "none"), default="auto")


def _progress(mode: str) -> Any:
    if mode == "auto":
        tty = sys.stderr.isatty() and os.environ.get("CI") != "true"
        mode = "bar" if tty else "json"

    def emit(event: str, fields: dict[str, Any]) -> None:
        if mode == "none":
            return
        if mode == "bar" and event == "step":
            sys.stderr.write(
                f"\rstep {fields['step']}/{fields['steps']}  loss {fields['loss']:.4f}"
            )
            if fields["step"] == fields["steps"]:
                sys.stderr.write("\n")
        elif mode == "json" and event == "step" and fields["step"] % 10 and fields["step"] != 1:
            return
        else:
            sys.stderr.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stderr.flush()

    return emit


def run(args: argparse.Namespace) -> int:
    from training.llm.config import load_llm_config

    config = load_llm_config(args.config)
    if args.llm_command == "pairs":
        from training.llm.pipeline import load_kb, make_pairs

        _, manifest = make_pairs(config, load_kb(config))
        counts = manifest["counts"]
        sys.stdout.write(
            f"pairs: {counts['train']['pairs']} train ({counts['train']['facts']} facts), "
            f"{counts['held_out']['pairs']} held out ({counts['held_out']['facts']} facts); "
            f"KB {manifest['kb_version']}\n"
        )
        return 0
    from training.llm.pipeline import run as run_pipeline
    from training.llm.pipeline import summary_lines

    record = run_pipeline(config, progress=_progress(args.progress))
    sys.stdout.write("".join(line + "\n" for line in summary_lines(record)))
    return 0
