"""Metrics against hand-computed values (worked out in the comments), never the code's own."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    calibration_slope_intercept,
    expected_calibration_error,
    patient_bootstrap,
    per_patient,
    point_metrics,
    sensitivity_at_specificity,
    sensitivity_specificity,
)

# The classic four-point case: negatives at 0.1 and 0.4, positives at 0.35 and 0.8.
Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.4, 0.35, 0.8])


def test_point_metrics_of_the_four_point_case() -> None:
    m = point_metrics(Y, P, threshold=0.5)
    # Of the 4 positive-negative pairs, 3 are ranked right: (0.35 > 0.1), (0.8 > both).
    assert m["roc_auc"] == pytest.approx(0.75)
    # AP: ranked 0.8(+) 0.4(-) 0.35(+) 0.1(-): recall 0.5 at precision 1, then recall 1 at
    # precision 2/3: 0.5 * 1 + 0.5 * 2/3.
    assert m["pr_auc"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # At 0.5 only 0.8 is called positive: sensitivity 1/2, specificity 2/2.
    assert m["sensitivity"] == pytest.approx(0.5)
    assert m["specificity"] == pytest.approx(1.0)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    # Brier score: the mean squared gap, squares of 0.1, 0.4, 0.65 and 0.2 averaged.
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    # 15 bins: each probability alone in its bin, so ECE = mean |y - p|.
    assert m["ece"] == pytest.approx((0.1 + 0.4 + 0.65 + 0.2) / 4)
    # ROC points (fpr, tpr): (0,0) (0,.5) (.5,.5) (.5,1) (1,1): at fpr <= .1 the best tpr is .5.
    assert m["sensitivity_at_90_specificity"] == pytest.approx(0.5)
    assert m["sensitivity_at_95_specificity"] == pytest.approx(0.5)


def test_threshold_is_inclusive() -> None:
    # p >= t is positive: at t = 0.35 both positives are caught and the 0.4 negative too.
    assert sensitivity_specificity(Y, P, 0.35) == (1.0, 0.5)


def test_sensitivity_at_specificity_when_perfectly_separated() -> None:
    assert sensitivity_at_specificity(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.9]), 0.95) == 1.0


def test_ece_with_shared_bins() -> None:
    # 0.81 and 0.85 share bin 12 ([0.8, 0.8667)): mean p 0.83, accuracy 1/2 -> |0.5 - 0.83|
    # weighted 2/3; 0.05 alone in bin 0 with y 0: |0 - 0.05| weighted 1/3.
    ece = expected_calibration_error(np.array([1, 0, 0]), np.array([0.81, 0.85, 0.05]))
    assert ece == pytest.approx(2 / 3 * 0.33 + 1 / 3 * 0.05)
    # p = 1.0 falls in the last bin, not past it.
    assert expected_calibration_error(np.array([1]), np.array([1.0])) == pytest.approx(0.0)


def test_calibration_slope_of_calibrated_and_overconfident_probabilities() -> None:
    rng = np.random.default_rng(0)
    logit = rng.normal(0, 1.5, 40_000)
    y = (rng.random(40_000) < 1 / (1 + np.exp(-logit))).astype(int)
    calibrated = 1 / (1 + np.exp(-logit))
    slope, intercept = calibration_slope_intercept(y, calibrated)
    assert slope == pytest.approx(1.0, abs=0.05)
    assert intercept == pytest.approx(0.0, abs=0.05)
    # Logits doubled (over-confident): the recalibration slope halves.
    doubled = 1 / (1 + np.exp(-2 * logit))
    assert calibration_slope_intercept(y, doubled)[0] == pytest.approx(0.5, abs=0.03)


def test_bootstrap_resamples_patients_not_patches() -> None:
    # Two patients with identical patches: every patient resample has the same patches in the
    # same proportions, so each interval collapses onto the point value (0.75 AUC).
    y = np.concatenate([Y, Y])
    p = np.concatenate([P, P])
    patients = np.array(["a"] * 4 + ["b"] * 4)
    ci = patient_bootstrap(y, p, patients, lambda a, b: point_metrics(a, b, 0.5), resamples=50)
    assert ci["roc_auc"] == pytest.approx((0.75, 0.75))
    # Were patches resampled one by one, the AUC would vary between draws.
    different = np.array(["a", "b", "c", "d", "e", "f", "g", "h"])
    wide = patient_bootstrap(y, p, different, lambda a, b: point_metrics(a, b, 0.5), resamples=50)
    assert wide["roc_auc"][0] < 0.75 < wide["roc_auc"][1]


def test_per_patient_rows() -> None:
    rows = per_patient(Y, P, np.array(["a", "a", "b", "b"]), 0.5)
    assert rows[0] == {
        "patient": "a",
        "patches": 2,
        "positives": 0,
        "predicted_positive": 0,
        "mean_probability": pytest.approx(0.25),
        "accuracy": 1.0,
    }
    assert rows[1]["accuracy"] == 0.5  # 0.35 missed, 0.8 caught
