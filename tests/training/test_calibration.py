"""Temperature scaling and ECE on synthetic data whose true calibration is known."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
    softmax,
)


def _calibrated(n: int = 20_000, k: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): a perfectly calibrated model."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, k))
    probabilities = softmax(logits)
    cumulative = probabilities.cumsum(axis=1)
    labels = (rng.random((n, 1)) > cumulative).sum(axis=1)
    return logits, np.minimum(labels, k - 1)


def test_fit_temperature_recovers_a_known_temperature() -> None:
    logits, labels = _calibrated()
    # An overconfident model: the calibrated logits multiplied by 2.5.
    assert fit_temperature(logits * 2.5, labels) == pytest.approx(2.5, rel=0.05)
    # An underconfident one wants T < 1.
    assert fit_temperature(logits / 2.0, labels) == pytest.approx(0.5, rel=0.05)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.05)


def test_fit_temperature_is_deterministic_and_handles_degenerate_input() -> None:
    logits, labels = _calibrated(n=2_000, seed=1)
    assert fit_temperature(logits * 3, labels) == fit_temperature(logits * 3, labels)
    assert fit_temperature(np.zeros((4, 3)), np.array([0, 1, 2, 0])) == 1.0
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0
    # Perfectly separated data wants T -> 0; the answer stays finite and positive.
    separable = np.eye(3)[[0, 1, 2]] * 5.0
    assert 0 < fit_temperature(separable, np.array([0, 1, 2])) < 0.1
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((4, 3)), np.zeros(5, dtype=int))


def test_ece_is_near_zero_for_calibrated_and_large_for_overconfident_data() -> None:
    logits, labels = _calibrated()
    assert expected_calibration_error(softmax(logits), labels) < 0.02
    assert expected_calibration_error(softmax(logits * 2.5), labels) > 0.1


def test_ece_drops_after_fitting_the_temperature() -> None:
    logits, labels = _calibrated(seed=2)
    overconfident = logits * 2.5
    # Fit on a validation half, judge on the other half, as training does.
    half = len(labels) // 2
    temperature = fit_temperature(overconfident[:half], labels[:half])
    before = expected_calibration_error(softmax(overconfident[half:]), labels[half:])
    after = expected_calibration_error(softmax(overconfident[half:], temperature), labels[half:])
    assert after < before / 3
    # Scaling never changes the predicted class.
    np.testing.assert_array_equal(
        softmax(overconfident, temperature).argmax(1), overconfident.argmax(1)
    )


def test_reliability_curve_bins_by_confidence() -> None:
    probabilities = np.array([[0.95, 0.05], [0.85, 0.15], [0.35, 0.65], [0.55, 0.45]])
    labels = np.array([0, 1, 1, 0])
    confidence, accuracy, counts = reliability_curve(probabilities, labels, bins=10)
    assert counts.tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 1, 1]
    assert confidence[8] == pytest.approx(0.85) and accuracy[8] == 0.0
    assert confidence[9] == pytest.approx(0.95) and accuracy[9] == 1.0
    # |0-0.85| + |1-0.95| + |1-0.65| + |1-0.55|, each a quarter of the examples.
    expected = (0.85 + 0.05 + 0.35 + 0.45) / 4
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(expected)
