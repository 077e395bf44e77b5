"""Class weights and the weighted training input (no training)."""

from __future__ import annotations

import numpy as np

from model_store.schema import InputSpec, PreprocessingSpec
from training.config import TrainConfig
from training.datasets import Dataset, Split, empty_split, to_tf_dataset
from training.inputs import class_weights


def skewed() -> Dataset:
    labels = np.array([0] * 8 + [1] * 2)
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    shape = InputSpec(height=1, width=1, channels=1)
    return Dataset(
        name="skewed", source="memory", labels=["common", "rare"], input=shape,
        preprocessing=PreprocessingSpec(color_mode="L"), train=Split(images, labels, np.arange(10)),
        validation=empty_split(shape), test=empty_split(shape),
    )  # fmt: skip


def test_balanced_weights_are_n_over_classes_times_count() -> None:
    data = skewed()
    assert class_weights(TrainConfig(), data) is None
    weights = class_weights(TrainConfig(class_weight="balanced"), data)
    np.testing.assert_allclose(weights, [10 / (2 * 8), 10 / (2 * 2)])
    # Each class then carries the same total weight.
    counts = np.bincount(data.train.labels)
    assert weights[0] * counts[0] == weights[1] * counts[1]


def test_weighted_input_gives_each_example_its_class_weight() -> None:
    data = skewed()
    weights = np.array([0.625, 2.5], dtype=np.float32)
    assert isinstance(data.train, Split)
    stream = to_tf_dataset(data.train, 10, shuffle=False, seed=0, class_weights=weights)
    pixels, labels, example_weights = next(iter(stream))
    np.testing.assert_array_equal(example_weights.numpy(), weights[labels.numpy()])
    assert pixels.shape == (10, 1, 1, 1)
