"""Confusion matrix and precision/recall/F1 against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import accuracy, confusion_matrix, scores_from_confusion

# Three classes; class 2 is never predicted.
LABELS = np.array([0, 0, 0, 1, 1, 2, 2])
PREDICTED = np.array([0, 0, 1, 1, 0, 1, 0])


def test_confusion_matrix_counts_true_by_predicted() -> None:
    matrix = confusion_matrix(LABELS, PREDICTED, 3)
    assert matrix.tolist() == [[2, 1, 0], [1, 1, 0], [1, 1, 0]]
    assert matrix.sum() == len(LABELS)


def test_precision_recall_f1_per_class_and_macro() -> None:
    scores = scores_from_confusion(confusion_matrix(LABELS, PREDICTED, 3))
    # class 0: tp 2, predicted 4, support 3; class 1: tp 1, predicted 3, support 2.
    assert scores.precision.tolist() == pytest.approx([2 / 4, 1 / 3, 0.0])
    assert scores.recall.tolist() == pytest.approx([2 / 3, 1 / 2, 0.0])
    f1_0 = 2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3)
    f1_1 = 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2)
    assert scores.f1.tolist() == pytest.approx([f1_0, f1_1, 0.0])
    assert scores.support.tolist() == [3, 2, 2]
    assert scores.macro_precision == pytest.approx((1 / 2 + 1 / 3) / 3)
    assert scores.macro_recall == pytest.approx((2 / 3 + 1 / 2) / 3)
    assert scores.macro_f1 == pytest.approx((f1_0 + f1_1) / 3)
    assert accuracy(LABELS, PREDICTED) == pytest.approx(3 / 7)


def test_a_class_never_predicted_scores_zero_not_nan() -> None:
    scores = scores_from_confusion(confusion_matrix(LABELS, PREDICTED, 3))
    for values in (scores.precision, scores.recall, scores.f1):
        assert np.isfinite(values).all()
    assert scores.precision[2] == 0.0 and scores.f1[2] == 0.0


def test_a_class_absent_from_labels_and_predictions_is_left_out_of_macro() -> None:
    # Class 3 exists in the label set but not in this subset.
    scores = scores_from_confusion(confusion_matrix(LABELS, PREDICTED, 4))
    assert scores.precision[3] == 0.0 and scores.recall[3] == 0.0
    assert scores.macro_precision == pytest.approx((1 / 2 + 1 / 3) / 3)


def test_perfect_predictions_score_one() -> None:
    scores = scores_from_confusion(confusion_matrix(LABELS, LABELS, 3))
    assert scores.macro_f1 == 1.0 and scores.macro_precision == 1.0 and scores.macro_recall == 1.0


def test_labels_outside_the_class_range_are_rejected() -> None:
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)
