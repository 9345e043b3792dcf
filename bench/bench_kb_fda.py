"""The FDA layer's cost: the knowledge base with it vs the one before it, in the same run.

The old KB is the compiled file at commit cc4948d (36 FDA approvals, before the FDA layer and
the biomarker classes), read from git history; the new one is the shipped file (241 FDA facts,
class/exon/deleterious keys). Both are read and interpreted by today's code, alternating round
by round, so the ratio is the cost of the larger KB alone. Issue #12 target: interpretation
with the new KB at most 1.2x the old.

Figures: KB load time (read + index, CPU) and memory (tracemalloc: peak while loading and what
stays allocated), then interpret() on the 50-alteration panel of ``bench_interpret`` and on a
10-alteration list of FDA-layer biomarkers (EGFR exon 19 deletion, BRCA2 frameshift, FLT3-ITD,
...), cold (memo cleared every round) and warm. CPU time (``time.process_time``): the machine
is shared.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.bench_interpret import _alterations
from inference.genomics import (
    Biomarker,
    BiomarkerKind,
    Gene,
    Origin,
    PatientContext,
    Variant,
    VariantClass,
    interpret,
    resolve_tumour_type,
)
from inference.genomics.interpret import clear_caches
from inference.genomics.kb import DEFAULT_KB_PATH, KnowledgeBase, read_knowledge_base

OLD_COMMIT = "cc4948d"
ROUNDS = 200
LOADS = 5


def _fda_list() -> list[Variant | Biomarker]:
    return [
        Variant(gene=Gene("EGFR"), hgvs_p="E746_A750del"),
        Variant(gene=Gene("EGFR"), hgvs_p="p.Thr790Met"),
        Variant(gene=Gene("BRCA2"), hgvs_c="c.5946delT", origin=Origin.GERMLINE),
        Variant(gene=Gene("BRCA1"), hgvs_c="c.68_69delAG"),
        Variant(gene=Gene("MET"), hgvs_c="c.3028+1G>T"),
        Variant(gene=Gene("FLT3"), variant_class=VariantClass.ITD),
        Variant(gene=Gene("KRAS"), hgvs_p="G12C"),
        Biomarker(kind=BiomarkerKind.FUSION, gene=Gene("ALK"), fusion_partner=Gene("EML4")),
        Biomarker(kind=BiomarkerKind.AMPLIFICATION, gene=Gene("ERBB2")),
        Biomarker(kind=BiomarkerKind.MSI_HIGH),
    ]


def _old_kb_file(directory: Path) -> Path | None:
    relative = DEFAULT_KB_PATH.relative_to(Path(__file__).resolve().parent.parent)
    try:
        blob = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:{relative.as_posix()}"],
            check=True,
            capture_output=True,
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = directory / "old-kb.json"
    path.write_bytes(blob)
    return path


def _load(path: Path) -> tuple[float, float, float]:
    """Median CPU ms of read+index, and MiB peak / retained while loading (tracemalloc)."""
    times = []
    for _ in range(LOADS):
        gc.collect()
        started = time.process_time()
        read_knowledge_base(path)
        times.append(time.process_time() - started)
    gc.collect()
    tracemalloc.start()
    kb = read_knowledge_base(path)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kb
    return statistics.median(times) * 1000, peak / 2**20, retained / 2**20


def _interpret_rounds(
    kbs: dict[str, KnowledgeBase], lists: dict[str, tuple[list[Variant | Biomarker], str]]
) -> dict[tuple[str, str, str], list[float]]:
    times: dict[tuple[str, str, str], list[float]] = {}
    contexts = {
        name: PatientContext(tumour_type=resolve_tumour_type(code))
        for name, (_, code) in lists.items()
    }
    for _ in range(ROUNDS):
        for kb_name, kb in kbs.items():
            for list_name, (alterations, _) in lists.items():
                context = contexts[list_name]
                clear_caches()
                for mode in ("cold", "warm"):
                    started = time.process_time()
                    interpret(alterations, context, kb=kb)
                    times.setdefault((kb_name, list_name, mode), []).append(
                        time.process_time() - started
                    )
    return times


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old_path = _old_kb_file(Path(tmp))
        if old_path is None:
            print(f"no git history with {OLD_COMMIT}: nothing to compare")
            return
        paths = {"old": old_path, "new": DEFAULT_KB_PATH}
        for name, path in paths.items():
            ms, peak, retained = _load(path)
            size = path.stat().st_size / 2**20
            print(
                f"KB {name} ({size:.2f} MiB JSON): load CPU median {ms:.1f} ms, "
                f"memory peak {peak:.1f} MiB, retained {retained:.1f} MiB"
            )
        kbs = {name: read_knowledge_base(path) for name, path in paths.items()}
        print(
            f"statements old {len(kbs['old'].statements)}, new {len(kbs['new'].statements)}; "
            f"keys old {len(kbs['old'].by_key)}, new {len(kbs['new'].by_key)}"
        )
        lists = {"panel-50": (_alterations(), "COAD"), "fda-10": (_fda_list(), "NSCLC")}
        for kb in kbs.values():  # warm imports and indexes
            for alterations, code in lists.values():
                interpret(alterations, PatientContext(tumour_type=resolve_tumour_type(code)), kb=kb)
        times = _interpret_rounds(kbs, lists)
        for list_name, (alterations, code) in lists.items():
            context = PatientContext(tumour_type=resolve_tumour_type(code))
            found = {
                name: len(interpret(alterations, context, kb=kb).therapeutic)
                for name, kb in kbs.items()
            }
            print(f"{list_name}: therapeutic findings old KB {found['old']}, new KB {found['new']}")
        for list_name in lists:
            for mode in ("cold", "warm"):
                old = statistics.median(times[("old", list_name, mode)]) * 1000
                new = statistics.median(times[("new", list_name, mode)]) * 1000
                print(
                    f"interpret {list_name} {mode}: new KB {new:.3f} ms CPU, old KB {old:.3f} ms "
                    f"(baseline); ratio {new / old:.2f}x (target <= 1.2x)"
                )
