"""Classification metrics in plain numpy: confusion matrix, precision, recall and F1.

Conventions follow scikit-learn with `zero_division=0`: a class that is never predicted has
precision 0 (not NaN), a class with no examples has recall 0, and F1 is 0 whenever precision
and recall are both 0. Macro averages are unweighted means over the classes that occur in the
true labels or the predictions (scikit-learn's default label set), so a test subset that lacks
a class is not penalised for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassScores:
    """Per-class arrays (index = class id) and their macro averages."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    macro_precision: float
    macro_recall: float
    macro_f1: float


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """`[true, predicted]` counts, shape `(num_classes, num_classes)`, int64."""
    y = np.asarray(labels, dtype=np.int64).ravel()
    p = np.asarray(predictions, dtype=np.int64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    for name, values in (("label", y), ("prediction", p)):
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"a {name} lies outside 0..{num_classes - 1}")
    flat = np.bincount(y * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = numerator.astype(np.float64)
    denominator = denominator.astype(np.float64)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def scores_from_confusion(matrix: np.ndarray) -> ClassScores:
    """Precision, recall, F1 and support per class, plus macro averages, from a confusion matrix."""
    cm = np.asarray(matrix, dtype=np.int64)
    true_positive = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = _safe_divide(true_positive, predicted)
    recall = _safe_divide(true_positive, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    present = (support > 0) | (predicted > 0)
    if not present.any():
        present = np.ones_like(present)

    def macro(values: np.ndarray) -> float:
        return float(values[present].mean()) if len(values) else 0.0

    return ClassScores(
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        macro_precision=macro(precision),
        macro_recall=macro(recall),
        macro_f1=macro(f1),
    )


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Fraction of predictions equal to the label (0.0 for no examples)."""
    y = np.asarray(labels).ravel()
    p = np.asarray(predictions).ravel()
    return float(np.mean(y == p)) if len(y) else 0.0
