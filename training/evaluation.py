"""Write a model version's evaluation/ directory: metrics, figures and raw predictions.

`write_evaluation` is given the test split's true labels and the probabilities of the exported
(temperature-scaled) model, plus the unscaled ones, and writes:

    report.json            every number below, the confusion matrix and reliability bins
    report.md              the same for people, linking the figures (and the ONNX parity)
    confusion_matrix.png   learning_curves.png   reliability.png
    predictions.npz        indices, labels, probabilities (float32)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from model_store.schema import ClassMetrics, OnnxExport, TestMetrics
from training.calibration import (
    expected_calibration_error,
    negative_log_likelihood,
    reliability_curve,
)
from training.metrics import accuracy, confusion_matrix, scores_from_confusion
from training.plots import plot_confusion_matrix, plot_learning_curves, plot_reliability

logger = logging.getLogger(__name__)

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CONFUSION_PNG = "confusion_matrix.png"
CURVES_PNG = "learning_curves.png"
RELIABILITY_PNG = "reliability.png"
PREDICTIONS_NPZ = "predictions.npz"
ECE_BINS = 15


def _check_inputs(
    labels: np.ndarray, probabilities: np.ndarray, uncalibrated: np.ndarray,
    indices: np.ndarray, num_classes: int,
) -> None:  # fmt: skip
    if probabilities.ndim != 2 or probabilities.shape[1] != num_classes:
        raise ValueError(f"probabilities {probabilities.shape} do not have {num_classes} columns")
    if uncalibrated.shape != probabilities.shape:
        raise ValueError(f"uncalibrated {uncalibrated.shape} != calibrated {probabilities.shape}")
    if labels.shape != (len(probabilities),) or indices.shape != labels.shape:
        raise ValueError(
            f"{len(probabilities)} rows of probabilities but labels {labels.shape}, "
            f"indices {indices.shape}"
        )


def write_evaluation(
    out_dir: Path,
    *,
    labels: np.ndarray,
    probabilities: np.ndarray,
    uncalibrated_probabilities: np.ndarray,
    label_names: list[str],
    history: dict[str, list[float]],
    indices: np.ndarray,
    temperature: float,
    onnx: OnnxExport | None = None,
) -> TestMetrics:
    """Compute the test metrics, write every evaluation file into `out_dir`, return the metrics.

    `onnx` is the parity of the version's model.onnx with the SavedModel, reported beside them.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y = np.asarray(labels, dtype=np.int64).ravel()
    probs = np.asarray(probabilities, dtype=np.float64)
    raw = np.asarray(uncalibrated_probabilities, dtype=np.float64)
    idx = np.asarray(indices, dtype=np.int64).ravel()
    _check_inputs(y, probs, raw, idx, len(label_names))

    predicted = probs.argmax(axis=1)
    matrix = confusion_matrix(y, predicted, len(label_names))
    scores = scores_from_confusion(matrix)
    ece_after = expected_calibration_error(probs, y, ECE_BINS)
    ece_before = expected_calibration_error(raw, y, ECE_BINS)
    metrics = TestMetrics(
        accuracy=accuracy(y, predicted),
        macro_precision=scores.macro_precision,
        macro_recall=scores.macro_recall,
        macro_f1=scores.macro_f1,
        ece=ece_after,
        ece_before_calibration=ece_before,
        temperature=float(temperature),
        nll=negative_log_likelihood(probs, y),
        per_class={
            name: ClassMetrics(
                precision=float(scores.precision[i]),
                recall=float(scores.recall[i]),
                f1=float(scores.f1[i]),
                support=int(scores.support[i]),
            )
            for i, name in enumerate(label_names)
        },
    )

    curve_before = reliability_curve(raw, y, ECE_BINS)
    curve_after = reliability_curve(probs, y, ECE_BINS)
    plot_confusion_matrix(matrix, label_names, out_dir / CONFUSION_PNG)
    plot_learning_curves(history, out_dir / CURVES_PNG)
    plot_reliability(
        curve_before, curve_after, ece_before, ece_after, float(temperature),
        out_dir / RELIABILITY_PNG,
    )  # fmt: skip
    np.savez(
        out_dir / PREDICTIONS_NPZ,
        indices=idx,
        labels=y,
        probabilities=np.asarray(probabilities, dtype=np.float32),
    )

    report = {
        "metrics": metrics.model_dump(mode="json"),
        "num_examples": len(y),
        "labels": list(label_names),
        "confusion_matrix": matrix.tolist(),
        "calibration": {
            "temperature": float(temperature),
            "bins": ECE_BINS,
            "ece_before": ece_before,
            "ece_after": ece_after,
            "nll_before": negative_log_likelihood(raw, y),
            "nll_after": metrics.nll,
            "reliability_before": _curve_json(curve_before),
            "reliability_after": _curve_json(curve_after),
        },
        "history": {key: [float(v) for v in values] for key, values in history.items()},
        "figures": [CONFUSION_PNG, CURVES_PNG, RELIABILITY_PNG],
        "onnx": None if onnx is None else onnx.model_dump(mode="json"),
    }
    (out_dir / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / REPORT_MD).write_text(
        _markdown(report, metrics, matrix, label_names) + _onnx_markdown(onnx)
    )
    logger.info(
        "evaluated %d examples: accuracy %.4f, macro F1 %.4f, ECE %.4f -> %.4f (T=%.3f)",
        len(y), metrics.accuracy, metrics.macro_f1, ece_before, ece_after, temperature,
    )  # fmt: skip
    return metrics


def _curve_json(curve: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, list[float]]:
    confidence, acc, counts = curve
    return {
        "confidence": [float(v) for v in confidence],
        "accuracy": [float(v) for v in acc],
        "count": [int(v) for v in counts],
    }


def _top_confusions(
    matrix: np.ndarray, label_names: list[str], limit: int = 5
) -> list[tuple[str, str, int]]:
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:limit]
    pairs = [np.unravel_index(i, off.shape) for i in order]
    return [(label_names[t], label_names[p], int(off[t, p])) for t, p in pairs if off[t, p] > 0]


def _markdown(
    report: dict, metrics: TestMetrics, matrix: np.ndarray, label_names: list[str]
) -> str:
    cal = report["calibration"]
    lines = [
        "# Evaluation report",
        "",
        f"Test examples: {report['num_examples']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| accuracy | {metrics.accuracy:.4f} |",
        f"| macro precision | {metrics.macro_precision:.4f} |",
        f"| macro recall | {metrics.macro_recall:.4f} |",
        f"| macro F1 | {metrics.macro_f1:.4f} |",
        f"| ECE (calibrated, {cal['bins']} bins) | {metrics.ece:.4f} |",
        f"| NLL (calibrated) | {metrics.nll:.4f} |",
        "",
        "## Per class",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name in label_names:
        c = metrics.per_class[name]
        lines.append(f"| {name} | {c.precision:.4f} | {c.recall:.4f} | {c.f1:.4f} | {c.support} |")
    lines += ["", "Most frequent confusions (true -> predicted):", ""]
    confusions = _top_confusions(matrix, label_names)
    lines += [f"- {t} -> {p}: {n}" for t, p, n in confusions] or ["- none"]
    lines += [
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "## Calibration",
        "",
        f"Temperature scaling fitted on the validation split: T = {cal['temperature']:.4f} "
        "(T > 1 softens overconfident probabilities; the predicted class never changes).",
        "",
        "| | ECE | NLL |",
        "|---|---|---|",
        f"| before (T = 1) | {cal['ece_before']:.4f} | {cal['nll_before']:.4f} |",
        f"| after | {cal['ece_after']:.4f} | {cal['nll_after']:.4f} |",
        "",
        "![reliability diagram](reliability.png)",
        "",
        "## Learning curves",
        "",
        "![learning curves](learning_curves.png)",
        "",
    ]
    return "\n".join(lines)


def _onnx_markdown(onnx: OnnxExport | None) -> str:
    if onnx is None:
        return ""
    agreeing = round(onnx.top1_agreement * onnx.images)
    versions = ", ".join(f"{name} {number}" for name, number in onnx.converter_versions.items())
    lines = [
        "",
        "## ONNX export",
        "",
        f"model.onnx (opset {onnx.opset}, {versions}) was run on the {onnx.images} test images "
        "and compared with the SavedModel before publishing:",
        "",
        "| | value | required |",
        "|---|---|---|",
        f"| max abs difference of a probability | {onnx.max_abs_difference:.3g} "
        f"| <= {onnx.tolerance:g} |",
        f"| same top-1 class | {agreeing}/{onnx.images} | all |",
        "",
    ]
    return "\n".join(lines)
