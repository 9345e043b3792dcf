"""Whole-process time of the ``oncocds`` command line, start-up included.

What a user waits for when typing a command: ``oncocds analyze`` on a 5-variant text list
(issue 12 §9: at most 0.5 s) and ``oncocds version`` (start-up alone), each a fresh process,
beside a baseline measured in the same run: ``python -c pass`` with the same interpreter (the
least any Python command costs). Rounds are interleaved, so load from other work on the machine
falls on all three alike; medians and ratios to the baseline are printed.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONCOCDS = str(Path(sys.executable).parent / "oncocds")
ROUNDS = 11
FIVE_VARIANTS = "BRAF V600E\nKRAS G12D\nPIK3CA H1047R\nTP53 R175H\nEGFR L858R\n"
TARGET_S = 0.5


def _seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        variants = Path(tmp) / "five.txt"
        variants.write_text(FIVE_VARIANTS)
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "oncocds version": [ONCOCDS, "version"],
            "oncocds analyze (5 variants)": [
                ONCOCDS,
                "analyze",
                str(variants),
                "--tumor-type",
                "COAD",
            ],
        }
        for argv in commands.values():  # warm the file cache once
            _seconds(argv)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(ROUNDS):
            for name, argv in commands.items():
                samples[name].append(_seconds(argv))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["python -c pass (baseline)"]
    print(f"whole process, median of {ROUNDS} interleaved rounds:")
    for name, value in medians.items():
        spread = f"{min(samples[name]):.3f}-{max(samples[name]):.3f}"
        print(f"  {name:<30} {value:6.3f} s  ({spread} s; {value / baseline:5.1f}x baseline)")
    analyze = medians["oncocds analyze (5 variants)"]
    verdict = "within" if analyze <= TARGET_S else "ABOVE"
    print(f"  analyze is {verdict} the {TARGET_S} s target")
