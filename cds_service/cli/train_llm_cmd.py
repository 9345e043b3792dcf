"""``oncocds train-llm CONFIG``: fine-tune the explanation model (``python -m training llm train``).

The service never imports ``training`` (an import-linter contract), so the command starts it as a
child process of the same interpreter and passes its exit code and output through, as
``oncocds train`` does. Fine-tuning needs the ``[ml]`` extra (torch, transformers, peft); without
it the command says so in one line. docs/llm-finetuning.md describes the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from typing import Any

from cds_service.errors import OncoCDSError

_NEEDS = ("torch", "transformers", "peft")


def register(sub: Any) -> None:
    train = sub.add_parser(
        "train-llm",
        help="LoRA fine-tuning of the explanation model from the KB's cited facts (needs [ml])",
    )
    train.add_argument("config", help="TOML config (docs/llm-finetuning.md)")
    train.add_argument("--pairs-only", action="store_true", help="write the pairs, do not train")
    train.add_argument("--progress", choices=("auto", "bar", "json", "none"), default="auto")
    train.set_defaults(func=_train_llm)


def _train_llm(args: argparse.Namespace) -> int:
    missing = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise OncoCDSError(
            f"fine-tuning needs the [ml] extra (missing: {', '.join(missing)}); "
            "install with: pip install torch==2.13.0 -e '.[ml]'"
        )
    if args.pairs_only:
        argv = ["llm", "pairs", args.config]
    else:
        argv = ["llm", "train", args.config, "--progress", args.progress]
    # Our own interpreter and module, arguments as a list (no shell): nothing untrusted runs.
    command = [sys.executable, "-m", "training", *argv]
    completed = subprocess.run(command, check=False)  # noqa: S603
    return completed.returncode
