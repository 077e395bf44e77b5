"""The tf.data inputs `fit` trains and validates on, for any data set and strategy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from training.batches import eval_batch_size
from training.config import TrainConfig
from training.datasets import Dataset, Split, to_tf_dataset
from training.distribute import Distribution
from training.streaming import FileSplit, train_stream

if TYPE_CHECKING:
    import tensorflow as tf

VALIDATION_BATCH = 256


def class_weights(config: TrainConfig, data: Dataset) -> np.ndarray | None:
    """Per-class loss weights, `n / (classes * n_class)` over the training split, or None."""
    if config.class_weight == "none":
        return None
    counts = np.bincount(data.train.labels, minlength=len(data.labels)).astype(np.float64)
    weights = len(data.train.labels) / (len(data.labels) * np.maximum(counts, 1.0))
    return weights.astype(np.float32)


def training_input(
    config: TrainConfig,
    data: Dataset,
    distribution: Distribution,
    global_batch: int,
    weights: np.ndarray | None,
) -> Any:
    """An endless shuffled `(pixels, labels[, weights])` stream batched to `global_batch`; for
    several workers, a distributed one where each worker decodes only its share of files."""
    split = data.train
    if isinstance(split, FileSplit):
        assert data.streaming is not None
        streaming = data.streaming

        def files(batch: int, shard: tuple[int, int] = (1, 0)) -> tf.data.Dataset:
            return train_stream(
                split, streaming.decoder, streaming.options, batch, config.seed,
                class_weights=weights, shard=shard,
            )  # fmt: skip

        if distribution.multi_worker and distribution.strategy is not None:

            def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
                batch = context.get_per_replica_batch_size(global_batch)
                shard = (context.num_input_pipelines, context.input_pipeline_id)
                return files(batch, shard)

            return distribution.strategy.distribute_datasets_from_function(per_worker)
        return files(global_batch)
    assert isinstance(split, Split)
    return to_tf_dataset(
        split, global_batch, shuffle=True, seed=config.seed, repeat=True, class_weights=weights
    )


def validation_input(data: Dataset) -> tf.data.Dataset:
    """`(pixels, labels)` batches of the validation split, in order."""
    split = data.validation
    shape = data.input
    batch = eval_batch_size(shape.height * shape.width * shape.channels, VALIDATION_BATCH)
    if isinstance(split, Split):
        return to_tf_dataset(split, batch, shuffle=False, seed=0)
    return split.dataset(batch)


def example_batch(data: Dataset, weights: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Two zero images and labels shaped like a training batch (to build a model's state)."""
    shape = data.input
    pixels = np.zeros((2, shape.height, shape.width, shape.channels), dtype=np.uint8)
    labels = np.zeros(2, dtype=np.int32)
    return (pixels, labels) if weights is None else (pixels, labels, np.ones(2, np.float32))
