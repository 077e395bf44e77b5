"""fit: the loss, mixed precision and early stopping as a training run sees them."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import ModelConfig
from training.datasets import load_dataset
from training.profiles import get_profile
from training.train import fit, make_loss, predict_logits


def test_label_smoothing_loss_matches_its_definition() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], dtype=np.float32)
    labels = np.array([0, 2])
    loss = make_loss(ModelConfig(label_smoothing=0.1), 3)
    targets = np.full((2, 3), 0.1 / 3) + 0.9 * np.eye(3)[labels]
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = float(np.mean(-(targets * log_probs).sum(axis=1)))
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
    plain = make_loss(ModelConfig(), 3)
    assert float(plain(labels, logits)) == pytest.approx(
        float(np.mean(-log_probs[[0, 1], labels])), rel=1e-5
    )


@pytest.fixture(scope="module")
def small_data():
    config = get_profile("tiny").model_copy(update={"train_limit": 300, "test_limit": 50})
    return load_dataset(config)


def test_mixed_precision_run_returns_a_float32_model(small_data) -> None:
    config = get_profile("tiny").model_copy(
        update={"mixed_precision": True, "epochs": 2, "train_limit": 300, "patience": 5}
    )
    result = fit(config, small_data, verbose=0)
    assert result.epochs_run == 2
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(layer.compute_dtype == "float32" for layer in result.model.layers[1:])
    logits = predict_logits(result.model, small_data.test.images)
    assert logits.shape == (50, 10) and logits.dtype == np.float32
    assert float(np.mean(logits.argmax(1) == small_data.test.labels)) > 0.2


def test_same_seed_same_model(small_data) -> None:
    config = get_profile("tiny").model_copy(update={"train_limit": 300})
    first, second = fit(config, small_data, verbose=0), fit(config, small_data, verbose=0)
    np.testing.assert_allclose(
        predict_logits(first.model, small_data.test.images),
        predict_logits(second.model, small_data.test.images),
        atol=1e-4,
    )
