"""Train -> calibrate -> export -> evaluate the exported signature -> publish; and re-evaluate.

The test metrics are always computed by running the SavedModel's own serving signature, so
the numbers in metadata.json describe exactly what will be served. The same signature converted
to ONNX is published beside it only if it gives the same outputs on the whole test set.
"""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from pydantic import ValidationError

from model_store import (
    DatasetInfo,
    LibraryVersions,
    Metrics,
    ModelMetadata,
    ModelStore,
    TestMetrics,
    TrainingInfo,
)
from model_store.schema import EVALUATION_DIR
from training.calibration import expected_calibration_error, fit_temperature, softmax
from training.config import TrainConfig, default_fashion_dir
from training.datasets import Dataset, EvalSplit, load_dataset
from training.distribute import Distribution
from training.errors import TrainingError
from training.evaluation import REPORT_JSON, write_evaluation
from training.export import export_saved_model, load_signature, run_signature
from training.onnx_export import export_onnx
from training.train import TrainResult, fit, predict_logits

logger = logging.getLogger(__name__)


def train_and_publish(
    config: TrainConfig,
    store: ModelStore,
    model_name: str = "fashion",
    *,
    progress: bool = True,
    data: Dataset | None = None,
    distribution: Distribution | None = None,
) -> ModelMetadata | None:
    """Train `config` on its data set and publish the result as `model_name`'s next version.

    `data` is the already loaded `load_dataset(config)`, when the caller checked it first.
    Under a multi-worker `distribution` every worker trains and only the chief evaluates and
    publishes; the others return None.
    """
    data = data if data is not None else load_dataset(config)
    logger.info("data set %s: %s (fingerprint %s)", data.name, data.sizes(), data.fingerprint())
    result = fit(config, data, verbose="auto" if progress else 0, distribution=distribution)
    if not result.distribution.is_chief:
        logger.info("%s: training done; the chief publishes", result.distribution.describe())
        return None
    return publish_trained(config, store, model_name, data, result)


def publish_trained(
    config: TrainConfig, store: ModelStore, model_name: str, data: Dataset, result: TrainResult
) -> ModelMetadata:
    """Calibrate, export, check and evaluate a fitted model, and publish it (on the chief)."""
    if data.train_skips.paths:
        logger.warning(
            "skipped %d image file(s) whose pixels did not decode while training",
            len(data.train_skips),
        )
    val_logits = predict_logits(result.model, data.validation)
    temperature = fit_temperature(val_logits, data.validation.labels)
    logger.info("temperature fitted on %d validation images: %.4f", len(val_logits), temperature)
    test_logits = predict_logits(result.model, data.test)
    with store.staging(model_name) as staged:
        export_saved_model(result.model, staged, temperature, data.input)
        signature = load_signature(staged)
        probabilities = run_signature(signature, data.test)
        onnx = export_onnx(staged, signature, data.test, probabilities)
        test_metrics = write_evaluation(
            staged / EVALUATION_DIR,
            labels=data.test.labels,
            probabilities=probabilities,
            uncalibrated_probabilities=softmax(test_logits).astype(np.float32),
            label_names=data.labels,
            history=result.history,
            indices=data.test.indices,
            temperature=temperature,
            onnx=onnx,
        )
        metadata = ModelMetadata(
            name=model_name,
            labels=data.labels,
            input=data.input,
            preprocessing=data.preprocessing,
            metrics=Metrics(
                test=test_metrics,
                validation=_validation_metrics(val_logits, data.validation, temperature),
            ),
            training=TrainingInfo(
                profile=config.profile,
                hyperparameters=_hyperparameters(config),
                epochs_run=result.epochs_run,
                seconds=round(result.seconds, 2),
                seed=config.seed,
                **_run_info(result, data),
            ),
            dataset=_dataset_info(data),
            versions=LibraryVersions(
                tensorflow=tf.__version__,
                keras=keras.__version__,
                python=platform.python_version(),
            ),
            onnx=onnx,
        )
        return store.publish(model_name, staged, metadata)


def evaluate_version(
    store: ModelStore, name: str, ref: int | str = "latest", *, data_dir: Path | None = None
) -> TestMetrics:
    """Re-evaluate a published version on its own test set and swap in a fresh evaluation/.

    Nothing else in the version changes. `data_dir` overrides the recorded image folder.
    """
    version = store.resolve(name, ref)
    metadata = store.metadata(name, version)
    version_dir = store.version_dir(name, version)
    config = _recorded_config(metadata, data_dir)
    data = load_dataset(config, test_only=True)
    _check_same_test_set(metadata, data)
    probabilities = run_signature(load_signature(version_dir), data.test)
    temperature = metadata.metrics.test.temperature or 1.0
    # softmax(T * log p) recovers softmax(logits): the exported graph divides logits by T.
    uncalibrated = softmax(np.log(np.clip(probabilities, 1e-30, 1.0)), 1.0 / temperature)
    with store.staging(name) as scratch:
        metrics = write_evaluation(
            scratch / EVALUATION_DIR,
            labels=data.test.labels,
            probabilities=probabilities,
            uncalibrated_probabilities=uncalibrated.astype(np.float32),
            label_names=metadata.labels,
            history=_recorded_history(version_dir / EVALUATION_DIR / REPORT_JSON),
            indices=data.test.indices,
            temperature=temperature,
            onnx=metadata.onnx,  # the parity proven at publish; model.onnx has not changed
        )
        store.replace_evaluation(name, version, scratch / EVALUATION_DIR)
    return metrics


def _hyperparameters(config: TrainConfig) -> dict[str, object]:
    """The full recipe plus the data selection, enough to rebuild the same splits later."""
    recipe = config.recipe()
    recipe.update(
        data_dir=None if config.data_dir is None else str(Path(config.data_dir).resolve()),
        train_limit=config.train_limit,
        test_limit=config.test_limit,
    )
    return recipe


def _recorded_config(metadata: ModelMetadata, data_dir: Path | None) -> TrainConfig:
    recorded = dict(metadata.training.hyperparameters)
    if data_dir is not None:
        recorded["data_dir"] = str(data_dir)
    recorded["fashion_dir"] = str(default_fashion_dir())
    try:
        return TrainConfig.model_validate(recorded)
    except ValidationError as exc:
        raise TrainingError(
            f"{metadata.name} version {metadata.version} does not record a usable training "
            f"configuration: {str(exc).splitlines()[0]}"
        ) from exc


def _check_same_test_set(metadata: ModelMetadata, data: Dataset) -> None:
    if data.labels != metadata.labels:
        raise TrainingError(
            f"the data set's classes {data.labels} differ from the model's {metadata.labels}"
        )
    recorded = metadata.dataset.splits.get("test")
    if recorded is not None and recorded != len(data.test):
        raise TrainingError(
            f"the test set has {len(data.test)} images now but had {recorded} at training time; "
            "the data set changed"
        )


def _recorded_history(report: Path) -> dict[str, list[float]]:
    """The learning curves from the previous evaluation report (training history is not
    recomputed); empty when there is none."""
    try:
        history = json.loads(report.read_text()).get("history", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return history if isinstance(history, dict) else {}


def _run_info(result: TrainResult, data: Dataset) -> dict[str, object]:
    """How the run was distributed, and the class weights it trained with."""
    weights = result.class_weights
    return {
        "strategy": result.distribution.name,
        "replicas": result.distribution.replicas,
        "workers": result.distribution.workers,
        "global_batch": result.global_batch,
        "class_weights": None
        if weights is None
        else {name: round(float(w), 6) for name, w in zip(data.labels, weights, strict=True)},
    }


def _validation_metrics(
    logits: np.ndarray, split: EvalSplit, temperature: float
) -> dict[str, float]:
    if len(split) == 0:
        return {}
    calibrated = softmax(logits, temperature)
    return {
        "accuracy": float(np.mean(calibrated.argmax(axis=1) == split.labels)),
        "ece": expected_calibration_error(calibrated, split.labels),
        "ece_before_calibration": expected_calibration_error(softmax(logits), split.labels),
        "examples": float(len(split)),
    }


def _dataset_info(data: Dataset) -> DatasetInfo:
    splits = data.sizes()
    splits["train"] -= len(data.train_skips)  # files whose pixels did not decode in training
    if data.total_skipped():
        splits["skipped"] = data.total_skipped()
    return DatasetInfo(
        name=data.name, fingerprint=data.fingerprint(), splits=splits, source=data.source
    )
