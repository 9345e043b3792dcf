"""Evaluation report: metrics with patient-bootstrap CIs, patient-level aggregation, model card.

The model card follows the items TRIPOD+AI (Collins et al., BMJ 385:e078378, 2024,
doi:10.1136/bmj-2023-078378) and CLAIM (Tejani et al., Radiol Artif Intell 6(4):e240300,
2024) ask a report to give: data source and licence, the split and how it was made,
preprocessing, the model, metrics with confidence intervals, intended use and limitations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from training.metrics import patient_bootstrap, per_patient, point_metrics

NOT_FOR_CLINICAL_USE = (
    "**Not for clinical use until validated locally.** This model has not been cleared by any "
    "regulator. A site must evaluate it on its own patients, slides, stains and scanners, "
    "and a pathologist reviews every output."
)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def evaluation_report(
    labels: NDArray[np.int64],
    probabilities: NDArray[np.floating],
    patients: NDArray[np.str_],
    *,
    threshold: float,
    split: str,
    resamples: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Point metrics, their 95 % patient-bootstrap CIs, and per-patient rows (JSON-ready)."""
    point = point_metrics(labels, probabilities, threshold)
    intervals = patient_bootstrap(
        labels,
        probabilities,
        patients,
        lambda y, p: point_metrics(y, p, threshold),
        resamples=resamples,
        seed=seed,
    )
    rows = per_patient(labels, probabilities, patients, threshold)
    accuracies = [float(r["accuracy"]) for r in rows]
    return {
        "split": split,
        "patches": len(labels),
        "patients": len(rows),
        "positives": int(np.sum(labels)),
        "threshold": threshold,
        "bootstrap": {"unit": "patient", "resamples": resamples, "seed": seed},
        "metrics": {
            name: {
                "value": _finite(value),
                "ci95": [round(v, 6) for v in intervals[name]] if name in intervals else None,
            }
            for name, value in point.items()
        },
        "patient_level": {
            "median_accuracy": float(np.median(accuracies)) if accuracies else None,
            "min_accuracy": min(accuracies) if accuracies else None,
        },
        "per_patient": rows,
    }


def _metric_rows(report: dict[str, Any]) -> str:
    lines = ["| metric | value | 95 % CI (patient bootstrap) |", "| --- | --- | --- |"]
    for name, entry in report["metrics"].items():
        value = "n/a" if entry["value"] is None else f"{entry['value']:.3f}"
        ci = entry["ci95"]
        interval = "n/a" if ci is None else f"{ci[0]:.3f} to {ci[1]:.3f}"
        lines.append(f"| {name} | {value} | {interval} |")
    return "\n".join(lines)


def model_card(metadata: dict[str, Any], report: dict[str, Any] | None) -> str:
    """The bundle's ``docs/README.md``."""
    data = metadata["training_data"]
    cal = metadata["calibration"]
    pre = metadata["preprocessing"]
    split_rows = "\n".join(
        f"| {s} | {data['patients'][s]} | {data['patches'][s]} | {data['positives'][s]} |"
        for s in ("train", "validation", "test")
    )
    if report is None:
        metrics = "No test split was held out: no metrics are reported. Run `oncocds evaluate`."
    else:
        metrics = (
            f"On the **{report['split']}** split ({report['patients']} patients, "
            f"{report['patches']} patches), at the stored threshold:\n\n{_metric_rows(report)}\n\n"
            f"Median per-patient accuracy: {report['patient_level']['median_accuracy']}."
        )
    return f"""# {metadata["name"]} {metadata["version"]}

{NOT_FOR_CLINICAL_USE}

AI-generated outputs; requires pathologist review.

## Intended use
{metadata["intended_use"]}

## Model
{metadata["description"]} Network: `{metadata["network"]["_target_"]}` (MONAI, 2-D), one
output logit for class `{metadata["class_names"][1]}`. Seed {metadata["seed"]}.

## Data
- Source: {data["source"]}
- Licence: {data["licence"]}
- Duplicates removed by content hash: {data["duplicates_removed"]}
- Split: {data["split"]}

| split | patients | patches | positives |
| --- | --- | --- | --- |
{split_rows}

Every file used, with its sha256 and split: `docs/data_manifest.csv`.

## Preprocessing
RGB patches of {pre["patch_size"]}x{pre["patch_size"]} px, intensities
{pre["input_range"]} mapped to {pre["output_range"]} (MONAI `ScaleIntensityRange`,
`inference/imaging/transforms.py`, shared by training and serving). Training augmentations:
flips, 90° rotations, per-channel colour scale and shift.

## Calibration and operating point
Temperature scaling fitted on the validation patients: T = {cal["temperature"]:.4f}.
Threshold {cal["threshold"]:.4f}, chosen on validation for sensitivity ≥
{cal["target_sensitivity"]} (validation sensitivity {cal["validation_sensitivity"]},
specificity {cal["validation_specificity"]}).
Out-of-distribution guard: blank, blurred and colour-outlier patches are "indeterminate".

## Metrics
{metrics}

## Limitations
- Patch-level classifier of 50x50 px crops; slide- and patient-level calls need aggregation
  and pathologist judgement.
- Trained on one public dataset (one institution's scanners and stain); performance on other
  sites' slides is unknown until measured there.
- Published patient-level held-out results on the IDC set reach a balanced accuracy of about
  0.84-0.89; random patch-level splits report higher figures because one patient's patches
  sit on both sides.
"""
