"""``oncocds train CONFIG`` and ``oncocds evaluate BUNDLE DATA``: run ``python -m training``.

The service never imports ``training`` (an import-linter contract), so these commands start it
as a child process of the same interpreter and pass its exit code and output through. Training
needs the ``[ml]`` extra (torch, MONAI, scikit-learn, matplotlib); without it the command says
so in one line.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from typing import Any

from cds_service.errors import OncoCDSError

_NEEDS = ("torch", "monai", "sklearn", "matplotlib")


def register(sub: Any) -> None:
    train = sub.add_parser(
        "train", help="train, calibrate and export an imaging model bundle (needs [ml])"
    )
    train.add_argument("config", help="TOML training config (README: Training the IDC model)")
    train.add_argument("--stop-after", type=int, default=None, help="end after N epochs")
    train.add_argument("--progress", choices=("auto", "bar", "json", "none"), default="auto")
    train.set_defaults(func=_train)
    evaluate = sub.add_parser(
        "evaluate", help="metrics with CIs, plots and model card of a bundle (needs [ml])"
    )
    evaluate.add_argument("bundle")
    evaluate.add_argument("data", help="patch folder (IDC layout or --labels-csv)")
    evaluate.add_argument("--split", choices=("test", "validation", "train", "all"), default="test")
    evaluate.add_argument("--labels-csv", default=None)
    evaluate.add_argument("--output", default=None)
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="patient resamples")
    evaluate.add_argument("--device", default="cpu")
    evaluate.set_defaults(func=_evaluate)


def _run(argv: list[str]) -> int:
    missing = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise OncoCDSError(
            f"training needs the [ml] extra (missing: {', '.join(missing)}); "
            "install with: pip install torch==2.13.0 -e '.[ml]'"
        )
    # Our own interpreter and module, arguments as a list (no shell): nothing untrusted runs.
    command = [sys.executable, "-m", "training", *argv]
    completed = subprocess.run(command, check=False)  # noqa: S603
    return completed.returncode


def _train(args: argparse.Namespace) -> int:
    argv = ["train", args.config, "--progress", args.progress]
    if args.stop_after is not None:
        argv += ["--stop-after", str(args.stop_after)]
    return _run(argv)


def _evaluate(args: argparse.Namespace) -> int:
    argv = ["evaluate", args.bundle, args.data, "--split", args.split]
    argv += ["--bootstrap", str(args.bootstrap), "--device", args.device]
    if args.labels_csv:
        argv += ["--labels-csv", args.labels_csv]
    if args.output:
        argv += ["--output", args.output]
    return _run(argv)
