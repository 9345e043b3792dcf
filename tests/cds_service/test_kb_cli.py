"""``oncocds kb build|info`` end to end through the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from inference.genomics.kb import DEFAULT_KB_PATH

ONCOCDS = str(Path(sys.executable).parent / "oncocds")
SOURCES = DEFAULT_KB_PATH.parent.parent / "sources"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ONCOCDS, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_build_twice_is_byte_identical_and_info_reads_it(tmp_path: Path) -> None:
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    for out in (first, second):
        result = _run("kb", "build", "--sources", str(SOURCES), "--output", str(out))
        assert result.returncode == 0, result.stderr
    assert first.read_bytes() == second.read_bytes()
    info = _run("kb", "info", "--kb", str(first))
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith("version: civic-01-Aug-2024+curated-")
    assert "CIViC release 01-Aug-2024 (CC0-1.0)" in info.stdout
    assert "OncoTree release 2025-10-03 (CC-BY-4.0)" in info.stdout
    assert "attribution: OncoTree (release 2025-10-03), Memorial Sloan Kettering" in info.stdout
    assert "fda_approvals: 216" in info.stdout
    assert "fda_labels: 98" in info.stdout
    assert "drugs_with_rxnorm: 22" in info.stdout
    as_json = json.loads(_run("kb", "info", "--kb", str(first), "--json").stdout)
    assert as_json["counts"]["civic_assertions"] == 66


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = _run("kb", "info", "--kb", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("oncocds: error: compiled knowledge base")
    sources = tmp_path / "sources"
    shutil.copytree(SOURCES, sources)
    (sources / "civic" / "01-Aug-2024-VariantSummaries.tsv").write_text("tampered\n")
    tampered = _run("kb", "build", "--sources", str(sources), "--output", str(tmp_path / "k.json"))
    assert tampered.returncode == 2
    assert tampered.stderr.count("\n") == 1
    assert "sha256" in tampered.stderr
    assert "Traceback" not in tampered.stderr
