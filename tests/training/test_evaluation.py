"""write_evaluation writes a complete, self-consistent evaluation/ directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_store.schema import TestMetrics
from training.calibration import fit_temperature, softmax
from training.evaluation import write_evaluation

LABEL_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress"]
HISTORY = {
    "loss": [1.2, 0.7, 0.5],
    "accuracy": [0.55, 0.74, 0.81],
    "val_loss": [1.0, 0.8, 0.75],
    "val_accuracy": [0.6, 0.7, 0.72],
}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TestMetrics, dict]:
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, len(LABEL_NAMES), n)
    labels[:3] = 3  # class 3 has examples the model below never predicts
    logits = rng.normal(scale=2.0, size=(n, len(LABEL_NAMES)))
    logits[np.arange(n), labels] += 2.0
    logits[:, 3] -= 20.0
    logits *= 3.0  # overconfident
    temperature = fit_temperature(logits, labels)
    inputs = {
        "labels": labels,
        "probabilities": softmax(logits, temperature),
        "uncalibrated_probabilities": softmax(logits),
        "indices": np.arange(1000, 1000 + n),
        "temperature": temperature,
    }
    out = tmp_path_factory.mktemp("evaluation") / "evaluation"
    metrics = write_evaluation(out, label_names=LABEL_NAMES, history=HISTORY, **inputs)
    return out, metrics, inputs


def test_every_file_is_written_and_the_pngs_are_real_images(evaluated) -> None:
    out, _, _ = evaluated
    names = {p.name for p in out.iterdir()}
    assert names == {
        "report.json",
        "report.md",
        "confusion_matrix.png",
        "learning_curves.png",
        "reliability.png",
        "predictions.npz",
    }
    for name in ("confusion_matrix.png", "learning_curves.png", "reliability.png"):
        with Image.open(out / name) as image:
            image.verify()
            assert image.format == "PNG"
            assert image.width > 200 and image.height > 200


def test_report_json_matches_the_returned_metrics(evaluated) -> None:
    out, metrics, inputs = evaluated
    report = json.loads((out / "report.json").read_text())
    assert TestMetrics.model_validate(report["metrics"]) == metrics
    assert report["labels"] == LABEL_NAMES
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (4, 4) and matrix.sum() == len(inputs["labels"])
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics.accuracy)
    assert report["calibration"]["ece_before"] == metrics.ece_before_calibration
    assert report["calibration"]["ece_after"] == metrics.ece
    assert report["history"] == HISTORY
    assert metrics.temperature == pytest.approx(inputs["temperature"])
    assert metrics.ece < metrics.ece_before_calibration
    assert 0.0 < metrics.accuracy < 1.0 and metrics.nll > 0


def test_a_class_never_predicted_gets_zero_scores_not_nan(evaluated) -> None:
    _, metrics, _ = evaluated
    never = metrics.per_class["Dress"]
    assert never.precision == 0.0 and never.recall == 0.0 and never.f1 == 0.0
    assert never.support >= 3
    assert sum(c.support for c in metrics.per_class.values()) == 400
    assert np.isfinite(metrics.macro_f1)


def test_report_md_shows_the_headline_numbers_and_links_the_figures(evaluated) -> None:
    out, metrics, _ = evaluated
    text = (out / "report.md").read_text()
    assert f"{metrics.accuracy:.4f}" in text and f"{metrics.macro_f1:.4f}" in text
    for name in LABEL_NAMES:
        assert f"| {name} |" in text
    for image in ("confusion_matrix.png", "learning_curves.png", "reliability.png"):
        assert f"({image})" in text


def test_predictions_npz_round_trips(evaluated) -> None:
    out, _, inputs = evaluated
    with np.load(out / "predictions.npz") as saved:
        assert set(saved.files) == {"indices", "labels", "probabilities"}
        np.testing.assert_array_equal(saved["indices"], inputs["indices"])
        np.testing.assert_array_equal(saved["labels"], inputs["labels"])
        assert saved["probabilities"].dtype == np.float32
        np.testing.assert_allclose(saved["probabilities"], inputs["probabilities"], atol=1e-6)


def test_mismatched_inputs_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="columns"):
        write_evaluation(
            tmp_path,
            labels=np.zeros(2, dtype=int),
            probabilities=np.full((2, 3), 1 / 3),
            uncalibrated_probabilities=np.full((2, 3), 1 / 3),
            label_names=LABEL_NAMES,
            history={},
            indices=np.arange(2),
            temperature=1.0,
        )
