"""Text-list and FHIR intake throughput, the code of this branch beside the code before it.

Same run, same inputs, runs taking turns (the machine is shared): the notation package and the
split FHIR reader against

- the pre-split modules (``integrations/textlist.py`` and ``integrations/fhir/variant_intake.py``
  at commit :data:`BEFORE`, loaded from ``git show`` into throw-away modules), and
- a floor: for text, splitting each line and reading its protein change with
  :func:`inference.genomics.hgvs.protein_change_key` (what any reader must do); for FHIR, walking
  the Bundle's components by code without mapping or validating them.

Inputs: 5,000 pasted lines of the notations the old reader already understood (so both read the
same lines), and a Bundle of 500 Variant Observations (the STU3 BRAF fixture, with distinct ids
and changes, validation caches warm as on a server). ``python -m bench intake`` runs it.
"""

from __future__ import annotations

import copy
import json
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inference.genomics.hgvs import protein_change_key
from integrations.fhir import variant_intake_json as fj
from integrations.fhir.variant_intake import read_fhir_variants
from integrations.textlist import parse_text_list

ROOT = Path(__file__).resolve().parent.parent
#: The commit before the notation package and the variant_intake split.
BEFORE = "cc4948d"
REPEATS = 7
_LINES = [
    "BRAF V600E",
    "EGFR p.L858R",
    "KRAS p.(Gly12Asp)",
    "TP53:c.818G>A",
    "EGFR E746_A750del",
    "EGFR D770_N771insSVD",
    "BRCA2 W288fs*12 germline",
    "ALK fusion",
    "EML4-ALK fusion",
    "ERBB2 amplification",
    "CDKN2A deletion",
    "MSI-H",
    "TMB 12",
    "PIK3CA H1047R VAF 42% DP 300",
    "NM_000546.6(TP53):c.818G>A",
    "DPYD *1/*2A",
]


def _old_module(path: str, name: str, patch: Callable[[str], str] = lambda s: s) -> Any:
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(name)
    module.__dict__["__name__"] = name
    sys.modules[name] = module
    exec(compile(patch(source), f"{BEFORE}:{path}", "exec"), module.__dict__)
    return module


def _old_fhir_source(source: str) -> str:
    # The old module took the accession table from integrations.normalise; it lives in
    # integrations.chromosomes now (same table).
    return source.replace("    REFSEQ_CHROMOSOMES,\n", "").replace(
        "from integrations.errors import IntakeError\n",
        "from integrations.errors import IntakeError\n"
        "from integrations.chromosomes import REFSEQ_CHROMOSOMES\n",
    )


def _interleaved(runs: dict[str, Callable[[], int]]) -> dict[str, tuple[float, float, int]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    counts: dict[str, int] = {}
    for _ in range(REPEATS):
        for name, run in runs.items():
            started = time.perf_counter()
            counts[name] = run()
            times[name].append(time.perf_counter() - started)
    return {name: (min(t), statistics.median(t), counts[name]) for name, t in times.items()}


def _text_floor(text: str) -> int:
    count = 0
    for line in text.splitlines():
        tokens = line.split()
        protein_change_key(tokens[1] if len(tokens) > 1 else tokens[0])
        count += 1
    return count


def _bundle(n: int) -> dict[str, Any]:
    fixture = json.loads(
        (ROOT / "tests" / "data" / "fhir" / "stu3_braf_report_bundle.json").read_text()
    )
    variant = fixture["entry"][0]["resource"]
    entries = []
    for i in range(n):
        copy_ = copy.deepcopy(variant)
        copy_["id"] = f"v{i}"
        entries.append({"fullUrl": f"urn:uuid:v{i}", "resource": copy_})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _fhir_floor(bundle: dict[str, Any]) -> int:
    count = 0
    for _location, resource in fj.resources(bundle):
        components = fj.Components(resource)
        components.string("48018-6")
        components.string("48005-3")
        count += 1
    return count


def _report(title: str, results: dict[str, tuple[float, float, int]], unit: str) -> None:
    new_best = results["new"][0]
    print(f"-- {title}")
    for name, (best, median, count) in results.items():
        rate = count / best
        print(
            f"{name:>6}: best {best * 1000:8.2f} ms, median {median * 1000:8.2f} ms, "
            f"{rate:10,.0f} {unit}/s, new/this = {new_best / best:5.2f}x"
        )


def main() -> None:
    old_text = _old_module("integrations/textlist.py", "_bench_old_textlist")
    old_fhir = _old_module(
        "integrations/fhir/variant_intake.py", "_bench_old_variant_intake", _old_fhir_source
    )
    text = "\n".join(_LINES[i % len(_LINES)] for i in range(5_000))
    assert not parse_text_list(text).problems
    assert not old_text.parse_text_list(text).problems
    _report(
        "text list, 5,000 lines",
        _interleaved(
            {
                "new": lambda: len(parse_text_list(text).alterations),
                "before": lambda: len(old_text.parse_text_list(text).alterations),
                "floor": lambda: _text_floor(text),
            }
        ),
        "lines",
    )
    bundle = _bundle(500)
    read_fhir_variants(bundle)  # warm the validation caches, as a server's are
    old_fhir.read_fhir_variants(bundle)
    _report(
        "FHIR Bundle, 500 Variant Observations (validation caches warm)",
        _interleaved(
            {
                "new": lambda: len(read_fhir_variants(bundle).alterations),
                "before": lambda: len(old_fhir.read_fhir_variants(bundle).alterations),
                "floor": lambda: _fhir_floor(bundle),
            }
        ),
        "observations",
    )


if __name__ == "__main__":
    main()
