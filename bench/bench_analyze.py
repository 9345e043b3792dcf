"""T001-COAD VCF (3,317 records) → interpretation, against a bare parse of the same file.

Baselines in the same run: splitting the gzip file into fields (the least any reader must do)
and reading it with the intake alone. Issue #7 asks for ≤ 0.3 s end to end on this file.
"""

from __future__ import annotations

import gzip
import statistics
import time
from pathlib import Path

from inference.genomics import PatientContext, interpret, load_knowledge_base, resolve_tumour_type
from integrations.readers import read_variants

VCF = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "data"
    / "vcf"
    / "pcgr_T001-COAD.grch37.vcf.gz"
)
ROUNDS = 15


def _bare_parse() -> int:
    count = 0
    with gzip.open(VCF, "rt") as handle:
        for line in handle:
            if not line.startswith("#"):
                line.rstrip("\n").split("\t")
                count += 1
    return count


def _intake() -> int:
    return len(read_variants(VCF).alterations)


def _end_to_end() -> int:
    result = read_variants(VCF)
    context = PatientContext(tumour_type=resolve_tumour_type("COAD"))
    return len(interpret(result.alterations, context).therapeutic)


def _median_ms(func: object) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        func()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    load_knowledge_base()  # loads once per process, as in the service
    bare = _median_ms(_bare_parse)
    intake = _median_ms(_intake)
    full = _median_ms(_end_to_end)
    print(f"T001-COAD (3,317 records), median of {ROUNDS}:")
    print(f"  bare gzip split        {bare:8.1f} ms")
    print(f"  intake (read_variants) {intake:8.1f} ms  ({intake / bare:.1f}x bare)")
    print(f"  intake + interpret     {full:8.1f} ms  ({full / bare:.1f}x bare; target <= 300 ms)")
