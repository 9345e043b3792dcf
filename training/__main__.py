"""``python -m training train CONFIG`` and ``python -m training evaluate BUNDLE DATA``;
``python -m training llm pairs|train CONFIG`` fine-tunes the explanation model (training/llm).

Errors a user can fix (a wrong config field, unreadable data, a bundle that fails
verification) print as one line, ``training: error: …``, with exit code 2. Progress goes to
stderr: a bar on a terminal, one JSON object per line under CI or when stderr is not a
terminal (``--progress`` chooses explicitly).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inference.errors import InferenceError
from training.errors import TrainingError
from training.llm.cli import register as register_llm


def _progress(mode: str) -> Any:
    if mode == "auto":
        tty = sys.stderr.isatty() and os.environ.get("CI") != "true"
        mode = "bar" if tty else "json"

    def json_lines(event: str, fields: dict[str, Any]) -> None:
        if event != "step":
            sys.stderr.write(json.dumps({"event": event, **fields}) + "\n")
            sys.stderr.flush()

    def bar(event: str, fields: dict[str, Any]) -> None:
        if event == "step":
            done = fields["step"] * 30 // max(fields["steps"], 1)
            sys.stderr.write(
                f"\repoch {fields['epoch']} [{'#' * done}{'.' * (30 - done)}] "
                f"{fields['step']}/{fields['steps']}"
            )
        elif event == "epoch_end":
            sys.stderr.write(f"  loss {fields['loss']:.4f}  val AUC {fields['val_auc']:.4f}\n")
        elif event != "epoch_start":
            sys.stderr.write(f"{event}: {json.dumps(fields)}\n")
        sys.stderr.flush()

    def none(event: str, fields: dict[str, Any]) -> None:
        return None

    return {"json": json_lines, "bar": bar, "none": none}[mode]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="training", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train, calibrate and export a bundle")
    train.add_argument("config", type=Path, help="TOML config (see training/config.py)")
    train.add_argument(
        "--stop-after", type=int, default=None, help="end this session after N epochs (resumable)"
    )
    train.add_argument("--progress", choices=("auto", "bar", "json", "none"), default="auto")
    evaluate = sub.add_parser("evaluate", help="metrics, plots and model card of a bundle")
    evaluate.add_argument("bundle", type=Path)
    evaluate.add_argument("data", type=Path, help="patch folder (IDC layout or --labels-csv)")
    evaluate.add_argument("--split", choices=("test", "validation", "train", "all"), default="test")
    evaluate.add_argument("--labels-csv", type=Path, default=None)
    evaluate.add_argument("--output", type=Path, default=None)
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="patient resamples")
    evaluate.add_argument("--device", default="cpu")
    register_llm(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "llm":
            from training.llm.cli import run as run_llm

            return run_llm(args)
        if args.command == "train":
            from training.config import load_config

            config = load_config(args.config)  # a wrong field fails before torch is imported
            from training.train import run

            result = run(config, progress=_progress(args.progress), stop_after=args.stop_after)
            sys.stdout.write(f"{result}\n")
        else:
            from training.evaluate import evaluate

            report = evaluate(
                args.bundle,
                args.data,
                split=args.split,
                labels_csv=args.labels_csv,
                output=args.output,
                resamples=args.bootstrap,
                device=args.device,
            )
            auc = report["metrics"]["roc_auc"]
            sys.stdout.write(
                f"{report['split']}: {report['patients']} patients, {report['patches']} patches, "
                f"ROC-AUC {auc['value']} (95 % CI {auc['ci95']})\n"
            )
    except (TrainingError, InferenceError) as exc:
        sys.stderr.write(f"training: error: {exc.message}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
