"""VCF intake: T001-COAD to an IntakeResult, and streaming throughput and memory on 1 M records.

Baselines, measured in the same run on the same file: a bare gzip/text line split (the floor for
any Python reader) and vcfpy iterating records without mapping them (the parser we build on).
Memory is the peak RSS of a fresh child process that streams N records (``resource.getrusage``),
for N = 100,000 and 1,000,000: flat means the reader does not hold the file.

``python -m bench vcf_intake`` runs it; ``ONCOCDS_BENCH_VCF_RECORDS`` changes the large size.
"""

from __future__ import annotations

import gzip
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import vcfpy

from integrations.vcf import iter_vcf, read_vcf

COAD = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "data"
    / "vcf"
    / "pcgr_T001-COAD.grch37.vcf.gz"
)
REPEATS = 7

_CHILD = """
import resource, sys, time
from integrations.vcf import iter_vcf
path, limit = sys.argv[1], int(sys.argv[2])
started = time.perf_counter()
count = 0
for item in iter_vcf(path):
    count += 1
    if count >= limit:
        break
elapsed = time.perf_counter() - started
print(count, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _interleaved(runs: dict[str, Callable[[], int]]) -> dict[str, tuple[float, float, int]]:
    """Best and median time of each run, the runs taking turns so machine load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    counts: dict[str, int] = {}
    for _ in range(REPEATS):
        for name, run in runs.items():
            started = time.perf_counter()
            counts[name] = run()
            times[name].append(time.perf_counter() - started)
    return {name: (min(t), statistics.median(t), counts[name]) for name, t in times.items()}


def _line_split(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    count = 0
    with opener(path, "rt") as handle:  # type: ignore[operator]
        for line in handle:
            if not line.startswith("#"):
                line.rstrip("\n").split("\t")
                count += 1
    return count


def _vcfpy_bare(path: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vcfpy.exceptions.VCFPyWarning)
        with vcfpy.Reader.from_path(str(path)) as reader:
            return sum(1 for _ in reader)


def _write_synthetic(path: Path, records: int) -> None:
    """A one-sample somatic VCF like PCGR's (INFO TVAF/TDP, FORMAT GT:AD:DP), 5% multi-allelic."""
    rng = random.Random(7)
    bases = "ACGT"
    with path.open("w") as out:
        out.write(
            "##fileformat=VCFv4.2\n"
            "##contig=<ID=1,length=248956422>\n"
            '##INFO=<ID=TVAF,Number=A,Type=Float,Description="tumour VAF">\n'
            '##INFO=<ID=TDP,Number=1,Type=Integer,Description="tumour depth">\n'
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
            '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">\n'
            '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tTUMOR\n"
        )
        lines = []
        for i in range(records):
            ref = bases[i % 4]
            if i % 20 == 0:
                alts = f"{bases[(i + 1) % 4]},{bases[(i + 2) % 4]}"
                info, sample = "TVAF=0.2,0.1;TDP=50", "1/2:35,10,5:50"
            else:
                alts = bases[(i + 1 + rng.randrange(3)) % 4]
                info, sample = f"TVAF=0.{rng.randrange(10, 99)};TDP=60", "0/1:40,20:60"
            lines.append(
                f"1\t{1000 + i * 10}\t.\t{ref}\t{alts}\t.\tPASS\t{info}\tGT:AD:DP\t{sample}\n"
            )
            if len(lines) == 10_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)


def _child(path: Path, limit: int) -> tuple[int, float, int]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    output = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(limit)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.split()
    return int(output[0]), float(output[1]), int(output[2])


def main() -> None:
    # ---- T001-COAD (3,317 records): intake vs bare parses, best of REPEATS
    figures = _interleaved(
        {
            "intake": lambda: len(read_vcf(COAD).alterations),
            "vcfpy": lambda: _vcfpy_bare(COAD),
            "split": lambda: _line_split(COAD),
        }
    )
    intake_best, intake_median, n_intake = figures["intake"]
    vcfpy_best, vcfpy_median, n_vcfpy = figures["vcfpy"]
    split_best, split_median, n_split = figures["split"]
    assert n_split == n_vcfpy == n_intake == 3317, (n_split, n_vcfpy, n_intake)
    print(
        f"T001-COAD GRCh37 ({n_intake} records), best/median of {REPEATS}, interleaved:\n"
        f"  read_vcf -> IntakeResult   {intake_best * 1000:7.1f} / {intake_median * 1000:7.1f} ms\n"
        f"  vcfpy records, no mapping  {vcfpy_best * 1000:7.1f} / {vcfpy_median * 1000:7.1f} ms"
        f"   (intake/vcfpy {intake_best / vcfpy_best:.2f}x)\n"
        f"  gzip line split            {split_best * 1000:7.1f} / {split_median * 1000:7.1f} ms"
        f"   (intake/split {intake_best / split_best:.1f}x)\n"
        f"  budget for intake + interpretation: 300 ms; intake uses {intake_best / 0.3:.0%}"
    )

    # ---- synthetic large VCF: streaming throughput and peak memory
    large = int(os.environ.get("ONCOCDS_BENCH_VCF_RECORDS", "1000000"))
    small = max(1, large // 10)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.vcf"
        started = time.perf_counter()
        _write_synthetic(path, large)
        size_mb = path.stat().st_size / 1e6
        print(
            f"synthetic VCF: {large:,} records, {size_mb:.0f} MB, written in "
            f"{time.perf_counter() - started:.1f} s"
        )

        started = time.perf_counter()
        n = _line_split(path)
        split_rate = n / (time.perf_counter() - started)
        started = time.perf_counter()
        n = _vcfpy_bare(path)
        vcfpy_rate = n / (time.perf_counter() - started)
        started = time.perf_counter()
        alleles = sum(1 for _ in iter_vcf(path))
        intake_rate = large / (time.perf_counter() - started)
        print(
            f"  iter_vcf streaming   {intake_rate:10,.0f} records/s ({alleles:,} variants)\n"
            f"  vcfpy, no mapping    {vcfpy_rate:10,.0f} records/s"
            f"   (intake/vcfpy {intake_rate / vcfpy_rate:.2f})\n"
            f"  line split           {split_rate:10,.0f} records/s"
            f"   (intake/split {intake_rate / split_rate:.3f})"
        )
        count_small, _, rss_small = _child(path, small)
        count_large, seconds, rss_large = _child(path, large)
        print(
            f"  peak RSS streaming {count_small:>9,} items: {rss_small / 1024:6.1f} MiB\n"
            f"  peak RSS streaming {count_large:>9,} items: {rss_large / 1024:6.1f} MiB"
            f"   (ratio {rss_large / rss_small:.2f} for {count_large / count_small:.0f}x the input;"
            f" child {count_large / seconds:,.0f} items/s)"
        )


if __name__ == "__main__":
    main()
