"""Evaluate a bundle on labelled patches: metrics JSON, plots, model card.

``DATA`` is a folder in the IDC layout (or with ``--labels-csv``). ``--split test`` (the
default) evaluates the patients the bundle's ``docs/data_manifest.csv`` put in the test split,
so the held-out set is exactly the one training held out; ``--split all`` evaluates every
patch of ``DATA`` (external validation on a site's own slides). The bundle is loaded through
the same :class:`inference.imaging.predictor.Predictor` the service uses.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from inference.imaging.bundle import DATA_MANIFEST
from inference.imaging.predictor import Predictor
from training.config import DataConfig
from training.data import discover, load_split
from training.errors import DataError
from training.plots import write_plots
from training.report import evaluation_report, model_card


def _manifest_patients(bundle: Path, split: str) -> set[str]:
    with (bundle / DATA_MANIFEST).open(newline="", encoding="utf-8") as handle:
        return {row["patient"] for row in csv.DictReader(handle) if row["split"] == split}


def evaluate(
    bundle: Path,
    data: Path,
    *,
    split: str = "test",
    labels_csv: Path | None = None,
    output: Path | None = None,
    resamples: int = 1000,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate; writes ``metrics.json``, ``model_card.md`` and PNG plots to ``output``."""
    predictor = Predictor.load(bundle, device=device)
    found = discover(DataConfig(root=data, labels_csv=labels_csv, patch_size=predictor.patch_size))
    records = found.records
    if split != "all":
        patients = _manifest_patients(bundle, split)
        records = tuple(r for r in records if r.patient in patients)
        if not records:
            raise DataError(f"{data}: no patches of the bundle's {split} patients")
    records = tuple(replace(r, split="evaluated") for r in records)
    arrays = load_split(data, records, "evaluated")
    if len(set(arrays.labels.tolist())) < 2:
        raise DataError(f"{data}: the evaluated patches need both classes")
    predictions = predictor.predict(arrays.images)
    report = evaluation_report(
        arrays.labels,
        predictions.probabilities,
        arrays.patients,
        threshold=predictor.threshold,
        split=split,
        resamples=resamples,
    )
    report["bundle"] = {
        "name": predictor.info.metadata.name,
        "version": predictor.info.metadata.version,
        "sha256": predictor.info.bundle_sha256,
    }
    report["indeterminate"] = dict(Counter(r for r in predictions.indeterminate if r))
    out = output or bundle.parent / f"evaluation-{split}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    metadata = predictor.info.metadata.model_dump(mode="json", by_alias=True)
    (out / "model_card.md").write_text(model_card(metadata, report))
    write_plots(out, arrays.labels, predictions.probabilities, predictor.threshold)
    return report
