"""Confidence calibration: temperature scaling and expected calibration error.

Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks") divides the
logits by one scalar T > 0 fitted on the validation split; it changes confidences, never the
predicted class. The NLL is convex in the inverse temperature b = 1/T, so the fit is a
safeguarded Newton search on the (monotone) derivative in log b: deterministic, no SciPy.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

MIN_TEMPERATURE = 0.01
MAX_TEMPERATURE = 100.0
_MAX_ITERATIONS = 200
_TOLERANCE = 1e-10


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of `logits / temperature`, computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class); probabilities are clipped so a confident mistake stays finite."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        return 0.0
    chosen = p[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(chosen, 1e-12, 1.0))))


def _nll_derivatives(z: np.ndarray, y: np.ndarray, beta: float) -> tuple[float, float]:
    """First and second derivative of mean NLL(softmax(beta * z)) with respect to beta."""
    p = softmax(z * beta)
    expected = np.sum(p * z, axis=1)
    variance = np.sum(p * z * z, axis=1) - expected**2
    first = float(np.mean(expected - z[np.arange(len(y)), y]))
    return first, float(np.mean(np.maximum(variance, 0.0)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T) on held-out (validation) data.

    Returns 1.0 when there is nothing to fit (no examples, or all logits tied) and clamps the
    answer to [MIN_TEMPERATURE, MAX_TEMPERATURE] (perfectly separated data wants T -> 0).
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if z.ndim != 2 or len(z) != len(y):
        raise ValueError(f"logits {z.shape} and labels {y.shape} do not match")
    if len(y) == 0 or np.allclose(z, z[:, :1]):
        return 1.0

    # Bracket the root of dNLL/dbeta (increasing in beta) on a log scale.
    lo, hi = np.log(1.0 / MAX_TEMPERATURE), np.log(1.0 / MIN_TEMPERATURE)
    if _nll_derivatives(z, y, float(np.exp(lo)))[0] >= 0:
        return MAX_TEMPERATURE
    if _nll_derivatives(z, y, float(np.exp(hi)))[0] <= 0:
        return MIN_TEMPERATURE

    u = 0.0  # log beta; start at T = 1
    for _ in range(_MAX_ITERATIONS):
        beta = float(np.exp(u))
        first, second = _nll_derivatives(z, y, beta)
        if first > 0:
            hi = u
        else:
            lo = u
        # Newton step in u = log beta: d/du = beta * f', d2/du2 = beta * f' + beta^2 * f''.
        curvature = beta * first + beta * beta * second
        step = -(beta * first) / curvature if curvature > 0 else np.inf
        candidate = u + step
        if not lo < candidate < hi:
            candidate = 0.5 * (lo + hi)  # Newton left the bracket: bisect instead
        if abs(candidate - u) < _TOLERANCE or hi - lo < _TOLERANCE:
            u = candidate
            break
        u = candidate
    temperature = float(np.clip(np.exp(-u), MIN_TEMPERATURE, MAX_TEMPERATURE))
    logger.debug("fitted temperature %.4f on %d examples", temperature, len(y))
    return temperature


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bins over (0, 1], right-closed: 1.0 falls in the last bin."""
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability_curve(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin: mean confidence, accuracy and count (empty bins give 0, 0, 0)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, not {bins}")
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    confidence = p.max(axis=1) if len(p) else np.zeros(0)
    correct = (p.argmax(axis=1) == y).astype(np.float64) if len(p) else np.zeros(0)
    index = _bin_index(confidence, bins)
    counts = np.bincount(index, minlength=bins).astype(np.int64)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    correct_sum = np.bincount(index, weights=correct, minlength=bins)
    safe = np.maximum(counts, 1)
    return conf_sum / safe, correct_sum / safe, counts


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = 15
) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    confidence, accuracy, counts = reliability_curve(probabilities, labels, bins)
    total = counts.sum()
    if total == 0:
        return 0.0
    return float(np.sum(counts * np.abs(accuracy - confidence)) / total)
