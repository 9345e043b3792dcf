"""Evaluation metrics, with patient-clustered bootstrap confidence intervals.

scikit-learn computes every metric it has (ROC-AUC, PR-AUC as average precision, balanced
accuracy, the confusion matrix, the ROC curve, Brier score, the logistic fit behind the
calibration slope). It has no expected calibration error, so :func:`expected_calibration_error`
is written here: 15 equal-width bins, ``sum(n_b / N * |accuracy_b - confidence_b|)`` with the
positive-class probability as the confidence (Naeini et al., AAAI 2015; Guo et al., ICML 2017).

Calibration slope and intercept are those of the logistic recalibration
``logit P(y=1) = a + b * logit(p)`` (Cox, Biometrika 45:562-565, 1958); a well-calibrated
model has ``b = 1`` and ``a = 0``. The fit is unpenalised (``LogisticRegression(C=inf)``).

Confidence intervals resample **patients** with replacement (their patches go together, since
they are correlated) and take the 2.5th and 97.5th percentiles; a resample with one class
only is skipped for the metrics that need both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.floating]
Ints = NDArray[np.integer]
ECE_BINS: Final = 15


def expected_calibration_error(y: Ints, p: Floats, *, bins: int = ECE_BINS) -> float:
    """ECE over ``bins`` equal-width bins of ``p`` in [0, 1] (the last bin includes 1)."""
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            total += in_bin.mean() * abs(y[in_bin].mean() - p[in_bin].mean())
    return float(total)


def sensitivity_specificity(y: Ints, p: Floats, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity of ``p >= threshold``."""
    from sklearn.metrics import confusion_matrix

    tn, fp, fn, tp = confusion_matrix(y, np.asarray(p) >= threshold, labels=[0, 1]).ravel()
    sensitivity = tp / (tp + fn) if tp + fn else float("nan")
    specificity = tn / (tn + fp) if tn + fp else float("nan")
    return float(sensitivity), float(specificity)


def sensitivity_at_specificity(y: Ints, p: Floats, specificity: float) -> float:
    """The highest sensitivity on the ROC curve whose specificity is at least ``specificity``."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    allowed = fpr <= 1.0 - specificity + 1e-12
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def calibration_slope_intercept(y: Ints, p: Floats) -> tuple[float, float]:
    """Slope and intercept of the logistic recalibration of ``y`` on ``logit(p)``."""
    from sklearn.linear_model import LogisticRegression

    clipped = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    logit = np.log(clipped / (1 - clipped)).reshape(-1, 1)
    # C=inf: no penalty (scikit-learn 1.8 deprecates penalty=None in favour of this).
    fit = LogisticRegression(C=np.inf, max_iter=1000).fit(logit, y)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def point_metrics(y: Ints, p: Floats, threshold: float) -> dict[str, float]:
    """Every metric on one set of labels ``y`` (0/1) and probabilities ``p``."""
    from sklearn.metrics import (
        average_precision_score,
        balanced_accuracy_score,
        brier_score_loss,
        roc_auc_score,
    )

    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    both = len(np.unique(y)) == 2
    sensitivity, specificity = sensitivity_specificity(y, p, threshold)
    out = {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "balanced_accuracy": float(balanced_accuracy_score(y, p >= threshold)),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "sensitivity_at_90_specificity": (
            sensitivity_at_specificity(y, p, 0.90) if both else float("nan")
        ),
        "sensitivity_at_95_specificity": (
            sensitivity_at_specificity(y, p, 0.95) if both else float("nan")
        ),
        "ece": expected_calibration_error(y, p),
        "brier": float(brier_score_loss(y, p)),
    }
    if both:
        out["calibration_slope"], out["calibration_intercept"] = calibration_slope_intercept(y, p)
    else:
        out["calibration_slope"] = out["calibration_intercept"] = float("nan")
    return out


def patient_bootstrap(
    y: Ints,
    p: Floats,
    patients: NDArray[np.str_],
    metric: Callable[[Ints, Floats], dict[str, float]],
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """95 % percentile intervals of each metric over patient-clustered resamples."""
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    unique, inverse = np.unique(patients, return_inverse=True)
    members = [np.flatnonzero(inverse == i) for i in range(len(unique))]
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        chosen = rng.integers(0, len(unique), len(unique))
        index = np.concatenate([members[i] for i in chosen])
        if len(np.unique(y[index])) < 2:
            continue
        for name, value in metric(y[index], p[index]).items():
            if np.isfinite(value):
                draws.setdefault(name, []).append(value)
    return {
        name: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
        for name, v in draws.items()
    }


def per_patient(
    y: Ints, p: Floats, patients: NDArray[np.str_], threshold: float
) -> list[dict[str, float | int | str]]:
    """Patient-level aggregation: per patient, patches, positives, mean probability, accuracy."""
    rows: list[dict[str, float | int | str]] = []
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    for patient in np.unique(patients):
        mask = patients == patient
        rows.append(
            {
                "patient": str(patient),
                "patches": int(mask.sum()),
                "positives": int(y[mask].sum()),
                "predicted_positive": int((p[mask] >= threshold).sum()),
                "mean_probability": float(p[mask].mean()),
                "accuracy": float(((p[mask] >= threshold) == (y[mask] == 1)).mean()),
            }
        )
    return rows
