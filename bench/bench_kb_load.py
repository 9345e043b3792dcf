"""Knowledge-base load at start-up: the shipped KB file vs a baseline KB file, same run.

The baseline is the compiled KB as it was at a git revision (``ONCOCDS_BENCH_KB_BASELINE_REV``,
default ``cc4948d``: the last commit before the whole OncoTree became the tumour table, 54
curated tumour types), read with ``git show`` into a temporary file. Both files are read by
today's loader, alternately, so machine noise hits both alike.

Figures per file: size; load time (``read_knowledge_base``: JSON parse + indexes; CPU and wall
medians of interleaved rounds); the first tumour-type resolution by name (it builds the
resolver's index; a code needs none); memory retained by the loaded object and the peak while
loading (``tracemalloc``, separate rounds, since tracing slows the timing ones); and interpret()
on a 50-alteration list with each KB (the tumour relation walks the larger table's lineages).
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.bench_interpret import _alterations
from inference.genomics import PatientContext, interpret
from inference.genomics.interpret import clear_caches
from inference.genomics.kb import DEFAULT_KB_PATH, KnowledgeBase, read_knowledge_base
from inference.genomics.tumour_types import _index, resolve_tumour_type

ROUNDS = 9
INTERPRET_ROUNDS = 100
_REPO = Path(__file__).resolve().parents[1]


def _baseline_file(directory: Path) -> tuple[Path, str]:
    rev = os.environ.get("ONCOCDS_BENCH_KB_BASELINE_REV", "cc4948d")
    relative = DEFAULT_KB_PATH.relative_to(_REPO)
    data = subprocess.run(
        ["git", "show", f"{rev}:{relative.as_posix()}"],
        cwd=_REPO,
        capture_output=True,
        check=True,
    ).stdout
    path = directory / "baseline-kb.json"
    path.write_bytes(data)
    return path, rev


def _load_times(path: Path) -> tuple[float, float]:
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    read_knowledge_base(path)
    return time.process_time() - cpu, time.perf_counter() - wall


def _memory(path: Path) -> tuple[int, int, KnowledgeBase]:
    gc.collect()
    tracemalloc.start()
    kb = read_knowledge_base(path)
    gc.collect()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return retained, peak, kb


def _first_resolve(kb: KnowledgeBase) -> float:
    _index.cache_clear()
    started = time.perf_counter()
    resolve_tumour_type("colorectal cancer", kb)  # a name: builds the resolver's index
    return time.perf_counter() - started


def _interpret_ms(kb: KnowledgeBase) -> float:
    context = PatientContext(tumour_type=resolve_tumour_type("COAD", kb))
    alterations = _alterations()
    interpret(alterations, context, kb=kb)
    times = []
    for _ in range(INTERPRET_ROUNDS):
        clear_caches()
        started = time.process_time()
        interpret(alterations, context, kb=kb)
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        baseline, rev = _baseline_file(Path(tmp))
        files = {f"baseline ({rev})": baseline, "current": DEFAULT_KB_PATH}
        loads: dict[str, list[tuple[float, float]]] = {name: [] for name in files}
        for _ in range(ROUNDS):
            for name, path in files.items():
                loads[name].append(_load_times(path))
        figures = {}
        for name, path in files.items():
            retained, peak, kb = _memory(path)
            cpu = statistics.median(t[0] for t in loads[name]) * 1000
            wall = statistics.median(t[1] for t in loads[name]) * 1000
            figures[name] = (cpu, wall, retained, peak, _first_resolve(kb) * 1000, kb)
            print(
                f"{name}: {path.stat().st_size / 1e6:.2f} MB, {len(kb.tumour_types)} tumour "
                f"types, {len(kb.statements)} statements; load CPU median {cpu:.0f} ms "
                f"(wall {wall:.0f} ms); retained {retained / 1e6:.1f} MB, peak while loading "
                f"{peak / 1e6:.1f} MB; first resolution by name {figures[name][4]:.1f} ms"
            )
        (b_cpu, _, b_ret, b_peak, b_res, b_kb), (c_cpu, _, c_ret, c_peak, c_res, c_kb) = (
            figures.values()
        )
        print(
            f"ratio current/baseline: load CPU {c_cpu / b_cpu:.2f}x, retained memory "
            f"{c_ret / b_ret:.2f}x, peak {c_peak / b_peak:.2f}x, first resolution "
            f"{c_res / b_res:.2f}x"
        )
        b_ms, c_ms = _interpret_ms(b_kb), _interpret_ms(c_kb)
        print(
            f"interpret 50 alterations (COAD, cold memo) CPU median: baseline KB {b_ms:.2f} ms, "
            f"current KB {c_ms:.2f} ms; ratio {c_ms / b_ms:.2f}x"
        )
