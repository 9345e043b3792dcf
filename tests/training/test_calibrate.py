"""Temperature scaling on a deliberately over-confident model; threshold choice by hand."""

from __future__ import annotations

import numpy as np
import pytest

from inference.imaging.predictor import calibrated_probability
from training.calibrate import choose_threshold, fit_temperature
from training.metrics import expected_calibration_error


def test_temperature_undoes_overconfidence_and_ece_drops() -> None:
    rng = np.random.default_rng(1)
    true_logit = rng.normal(0, 1.0, 50_000)
    labels = (rng.random(50_000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    overconfident = (3.0 * true_logit).astype(np.float32)  # a model 3x too sure of itself
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(3.0, rel=0.05)
    before = expected_calibration_error(labels, calibrated_probability(overconfident, 1.0))
    after = expected_calibration_error(labels, calibrated_probability(overconfident, temperature))
    assert before > 0.1
    assert after < before / 3


def test_temperature_keeps_the_ranking() -> None:
    logits = np.array([-2.0, 0.5, 1.0, 3.0], dtype=np.float32)
    p = calibrated_probability(logits, 2.5)
    assert list(np.argsort(p)) == [0, 1, 2, 3]
    assert p[1] == pytest.approx(1 / (1 + np.exp(-0.2)))


def test_threshold_meets_the_target_sensitivity_at_the_highest_cut() -> None:
    # Ten positives at 0.95, 0.9, ..., 0.5. Sensitivity >= 0.9 needs 9 of 10 caught: the
    # ninth highest positive, 0.55, is the highest threshold that does it.
    positives = np.round(np.arange(0.95, 0.49, -0.05), 2)
    p = np.concatenate([positives, [0.1, 0.6]])
    y = np.array([1] * 10 + [0, 0])
    assert choose_threshold(p, y, 0.9) == pytest.approx(0.55)
    assert choose_threshold(p, y, 1.0) == pytest.approx(0.5)
    assert choose_threshold(p, y, 0.1) == pytest.approx(0.95)


def test_threshold_needs_positives() -> None:
    with pytest.raises(ValueError, match="no positive"):
        choose_threshold(np.array([0.2]), np.array([0]), 0.9)
