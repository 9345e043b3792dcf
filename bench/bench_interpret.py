"""interpret() on a 50-variant list vs building the same 50 Variant objects (same run).

The list is what a panel report looks like: a few actionable variants (BRAF V600E by GRCh38
position, KRAS G12D, EGFR L858R, PIK3CA H1047R, an ALK fusion, TMB) among passenger and
unknown variants. Target (issue #7): interpretation ≤ 5 ms per list. The knowledge base is
loaded before timing (it loads once per process).

Times are CPU time of this process (``time.process_time``): the build machines are shared by
several jobs, and wall-clock time there mostly measures the scheduler. Wall-clock medians are
printed too.

Two figures: **cold**, with interpret()'s memo of (statements, tumour context) groupings
cleared before every round (a patient whose alterations were never seen before), and **warm**,
the steady state of a running service where hotspots recur.
"""

from __future__ import annotations

import statistics
import time

from inference.genomics import (
    Biomarker,
    BiomarkerKind,
    Gene,
    GenomeBuild,
    GenomicPosition,
    PatientContext,
    Variant,
    interpret,
    load_knowledge_base,
    resolve_tumour_type,
)
from inference.genomics.interpret import clear_caches

ROUNDS = 200
_GENES = ["TP53", "APC", "KRAS", "PIK3CA", "SMAD4", "FBXW7", "ARID1A", "NOTAGENE", "TTN", "MUC16"]


def _alterations() -> list[Variant | Biomarker]:
    items: list[Variant | Biomarker] = [
        Variant(gene=None, position=GenomicPosition(GenomeBuild.GRCH38, "7", 140753336, "A", "T")),
        Variant(gene=Gene("KRAS"), hgvs_p="p.Gly12Asp"),
        Variant(gene=Gene("EGFR"), hgvs_p="p.Leu858Arg"),
        Variant(gene=Gene("PIK3CA"), hgvs_c="NM_006218.3:c.3140A>G"),
        Biomarker(kind=BiomarkerKind.FUSION, gene=Gene("ALK"), fusion_partner=Gene("EML4")),
        Biomarker(kind=BiomarkerKind.TMB, tmb=14.0),
    ]
    n = 0
    while len(items) < 50:
        gene = _GENES[n % len(_GENES)]
        items.append(Variant(gene=Gene(gene), hgvs_p=f"p.Arg{100 + n}His"))
        n += 1
    return items


def main() -> None:
    load_knowledge_base()
    context = PatientContext(tumour_type=resolve_tumour_type("COAD"))
    alterations = _alterations()
    interpret(alterations, context)  # warm imports and the tumour-type index
    baseline: list[float] = []
    runs: dict[str, tuple[list[float], list[float]]] = {"cold": ([], []), "warm": ([], [])}
    for _ in range(ROUNDS):
        started = time.process_time()
        built = _alterations()
        baseline.append(time.process_time() - started)
        clear_caches()
        for name in ("cold", "warm"):
            cpu, wall = time.process_time(), time.perf_counter()
            result = interpret(built, context)
            runs[name][0].append(time.process_time() - cpu)
            runs[name][1].append(time.perf_counter() - wall)
    base_ms = statistics.median(baseline) * 1000
    for name, (cpu_times, wall_times) in runs.items():
        ms = statistics.median(cpu_times) * 1000
        p95 = sorted(cpu_times)[int(0.95 * ROUNDS)] * 1000
        print(
            f"50 alterations, {name}: interpret CPU median {ms:.2f} ms (p95 {p95:.2f} ms; "
            f"wall median {statistics.median(wall_times) * 1000:.2f} ms; target <= 5 ms); "
            f"baseline (build the 50 Variant objects) {base_ms:.3f} ms CPU; "
            f"ratio {ms / base_ms:.1f}x"
        )
    print(f"{len(result.therapeutic)} therapeutic findings, {len(result.unknown)} unknown")
