"""Compile and fit: AdamW with cosine decay, cross-entropy on logits, early stopping."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import keras
import numpy as np

from training.backbones import set_trainable
from training.batches import BatchSource, iterate_batches
from training.config import ModelConfig, TrainConfig
from training.datasets import Dataset
from training.distribute import Distribution, make_distribution, prepare_multi_worker_fit
from training.errors import TrainingError
from training.inputs import class_weights, example_batch, training_input, validation_input
from training.model import make_model, served_model

logger = logging.getLogger(__name__)

MIXED_POLICY = "mixed_bfloat16"


@dataclass(frozen=True)
class TrainResult:
    """The network as served (float32, best validation epoch's weights, mirror-averaged when
    the recipe says so) and what happened while fitting."""

    model: keras.Model
    history: dict[str, list[float]]
    epochs_run: int
    seconds: float
    distribution: Distribution
    global_batch: int
    class_weights: np.ndarray | None = None


class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy from logits with label smoothing (Keras' sparse loss
    has none)."""

    def __init__(self, num_classes: int, label_smoothing: float, name: str = "sparse_ce") -> None:
        super().__init__(name=name)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, self.num_classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )


def make_loss(config: ModelConfig, num_classes: int) -> keras.losses.Loss:
    if config.label_smoothing:
        return SparseSmoothedCrossentropy(num_classes, config.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_optimizer(config: ModelConfig, steps_per_epoch: int, epochs: int) -> keras.Optimizer:
    """AdamW; with the cosine schedule the rate warms up linearly, then decays to 1% of it."""
    rate: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.schedule == "cosine":
        warmup = round(config.warmup_epochs * steps_per_epoch)
        total = max(1, steps_per_epoch * epochs - warmup)
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate * (0.1 if warmup else 1.0),
            decay_steps=total,
            alpha=0.01,
            warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    return keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay)


def fit(
    config: TrainConfig,
    data: Dataset,
    *,
    verbose: int | str = "auto",
    distribution: Distribution | None = None,
) -> TrainResult:
    """Train on `data.train`, stop early on validation accuracy, restore the best epoch.

    `distribution` is made from `config.distribute` when not given (a multi-worker one must
    be made before TensorFlow runs anything: the CLI does). `config.batch_size` is per replica.
    """
    distribution = distribution or make_distribution(config.distribute)
    keras.utils.set_random_seed(config.seed)
    policy = MIXED_POLICY if config.mixed_precision else None
    num_classes = len(data.labels)
    global_batch = config.batch_size * distribution.replicas
    steps = math.ceil(len(data.train) / global_batch)
    weights = class_weights(config, data)
    with distribution.scope():
        model = make_model(
            config.model, data.input, num_classes, seed=config.seed, dtype_policy=policy
        )
    logger.info(
        "training %s on %d images (%d validation), %d epochs max, strategy %s, "
        "global batch %d (%d per replica)%s%s",
        config.profile,
        len(data.train),
        len(data.validation),
        config.epochs,
        distribution.describe(),
        global_batch,
        config.batch_size,
        f", {policy}" if policy else "",
        ", balanced class weights" if weights is not None else "",
    )
    train_input = training_input(config, data, distribution, global_batch, weights)
    phase = _Phase(config, data, distribution, model, train_input, steps, weights, verbose)
    start = time.monotonic()
    backbone = config.model.backbone != "cnn"
    if backbone:
        set_trainable(model, config.model, "head")
    curves = phase.run(config.model.learning_rate, config.epochs, 0)
    if backbone and config.model.fine_tune_epochs:
        set_trainable(model, config.model, "fine_tune")
        logger.info("fine-tuning the top of %s", config.model.backbone)
        tuned = phase.run(
            config.model.fine_tune_learning_rate,
            config.model.fine_tune_epochs,
            len(curves.get("loss", [])),
        )
        curves = {key: curves.get(key, []) + tuned.get(key, []) for key in curves | tuned}
    seconds = time.monotonic() - start
    if not all(np.isfinite(curves.get("loss", [0.0]))):
        raise TrainingError("training diverged (loss became NaN); lower the learning rate")
    epochs_run = len(curves.get("loss", []))
    if policy or distribution.strategy is not None:
        model = float32_copy(model, config, data)
    return TrainResult(
        served_model(model, config.model),
        curves,
        epochs_run,
        seconds,
        distribution,
        global_batch,
        weights,
    )


@dataclass
class _Phase:
    """One `model.fit` call of a run (a backbone's head, then its fine-tuning)."""

    config: TrainConfig
    data: Dataset
    distribution: Distribution
    model: keras.Model
    train_input: object
    steps: int
    weights: np.ndarray | None
    verbose: int | str

    def run(self, learning_rate: float, epochs: int, initial_epoch: int) -> dict[str, list[float]]:
        config, distribution, model = self.config, self.distribution, self.model
        recipe = config.model.model_copy(update={"learning_rate": learning_rate})
        with distribution.scope():
            model.compile(
                optimizer=make_optimizer(recipe, self.steps, epochs),
                loss=make_loss(config.model, len(self.data.labels)),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                jit_compile=_jit_compile(config),
            )
            # Its slots now, not inside the first traced step: a step that creates variables is
            # traced twice (MobileNetV3-Small, trained whole on CPU: 35 s of fit -> 14 s).
            model.optimizer.build(model.trainable_variables)
        if distribution.multi_worker and distribution.strategy is not None:
            batch = example_batch(self.data, self.weights)
            prepare_multi_worker_fit(model, distribution.strategy, batch)
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=config.patience, restore_best_weights=True
        )
        try:
            history = model.fit(
                self.train_input,
                steps_per_epoch=self.steps,
                validation_data=validation_input(self.data),
                epochs=initial_epoch + epochs,
                initial_epoch=initial_epoch,
                callbacks=[stopper, keras.callbacks.TerminateOnNaN()],
                shuffle=False,  # the pipeline shuffles, with the run's seed
                verbose=self.verbose,
            )
        except Exception as exc:
            if distribution.multi_worker and _is_op_error(exc):
                raise TrainingError(
                    f"multi-worker training failed (a worker died or could not be reached): "
                    f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                ) from exc
            raise
        return {key: [float(v) for v in values] for key, values in history.history.items()}


def _jit_compile(config: TrainConfig) -> str | bool:
    """Keras' default, except no XLA for a backbone on CPU: compiling MobileNetV3's training
    step took 37 s there instead of 24 s traced plainly, for no faster steps at test sizes."""
    import tensorflow as tf

    if config.model.backbone != "cnn" and not tf.config.list_logical_devices("GPU"):
        return False
    return "auto"


def _is_op_error(exc: BaseException) -> bool:
    import tensorflow as tf

    return isinstance(exc, tf.errors.OpError)


def float32_copy(model: keras.Model, config: TrainConfig, data: Dataset) -> keras.Model:
    """The same network computing in float32 outside any strategy, for evaluation and export:
    portable to CPUs without bfloat16, and free of collective ops between workers."""
    copy = make_model(
        config.model, data.input, len(data.labels), seed=config.seed, load_weights=False
    )
    copy.set_weights([np.asarray(weight, dtype=np.float32) for weight in model.get_weights()])
    return copy


def predict_logits(
    model: keras.Model, images: np.ndarray | BatchSource, batch_size: int = 512
) -> np.ndarray:
    """Float32 logits for uint8 images (in memory or streamed from disk), in inference mode.

    Eager calls: tracing a predict function per batch shape cost more than the calls
    themselves for a backbone's few validation and test batches.
    """
    outputs = [
        np.asarray(model(batch, training=False), dtype=np.float32)
        for batch in iterate_batches(images, batch_size)
    ]
    if not outputs:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    return np.concatenate(outputs)
