"""A servable: one loaded, warmed model version and the batcher that feeds it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.config import Settings
from app.core.batcher import Batcher
from app.core.runtime import (
    AUTO,
    ONNXRUNTIME,
    LoadedModel,
    choose_runtime,
    configure_tensorflow,
    freeze_heap,
    load_onnx_model,
    load_saved_model,
    onnxruntime_refusal,
    open_version,
    tensorflow_available,
    tensorflow_missing,
    warmup_sizes,
)
from app.metrics import Metrics

logger = logging.getLogger(__name__)

PredictHook = Callable[[np.ndarray], None]


@dataclass(eq=False)
class Servable:
    """A loaded, warmed version and the batcher that feeds it."""

    model: LoadedModel
    batcher: Batcher
    last_used: float = 0.0  # monotonic; see PinnedLoadBudget

    @property
    def version(self) -> int:
        return self.model.version


def load_and_warm(
    settings: Settings, store: Any, name: str, version: int, hook: PredictHook | None
) -> LoadedModel:
    """Load a version in the runtime TAGGER_RUNTIME chooses for it and run it once at every
    warmup batch size (blocking: call on a thread).

    With `auto`, a model.onnx that fails to load or warm leaves the version to TensorFlow;
    the returned model says why in `onnx_failure`. Where TensorFlow is not installed, a version
    that needs it raises RuntimeUnavailable saying so.
    """
    metadata, directory = open_version(store, name, version)
    auto = settings.runtime == AUTO
    refusal = onnxruntime_refusal(leave_gpu_to_tensorflow=auto)
    runtime = choose_runtime(settings.runtime, name, version, metadata, refusal)
    onnx_failure = None
    if runtime == ONNXRUNTIME:
        try:
            model = load_onnx_model(
                name, version, metadata, directory, settings.tf_intra_op_threads
            )
            return _warmed(model, settings, hook)
        except Exception as exc:
            if not auto:
                raise
            onnx_failure = str(exc)
            logger.warning(
                "%s v%d: model.onnx cannot be served (%s); serving it through TensorFlow",
                name,
                version,
                onnx_failure,
            )
    if not tensorflow_available():
        raise tensorflow_missing(
            name, version, _why_tensorflow(settings.runtime, onnx_failure, refusal)
        )
    device = configure_tensorflow(settings.tf_intra_op_threads, settings.tf_inter_op_threads)
    model = load_saved_model(name, version, metadata, directory, device)
    model.onnx_failure = onnx_failure
    return _warmed(model, settings, hook)


def _why_tensorflow(setting: str, onnx_failure: str | None, refusal: str | None) -> str:
    """Why a version is not served by ONNX Runtime, in words for an error message."""
    if setting != AUTO:
        return f"TAGGER_RUNTIME={setting}"
    if onnx_failure is not None:
        return f"its model.onnx cannot be served: {onnx_failure}"
    if refusal is not None:
        return refusal
    return "it has no model.onnx: published before ONNX export"


def _warmed(model: LoadedModel, settings: Settings, hook: PredictHook | None) -> LoadedModel:
    predict = _predict_fn(model, hook)
    for size in warmup_sizes(settings.max_batch_size):
        model.check_output(size, predict(np.zeros((size, *model.input_shape), np.uint8)))
    freeze_heap()
    where = f"{model.runtime} on {model.device}"
    logger.info("loaded and warmed %s v%d with %s", model.name, model.version, where)
    return model


def start_servable(
    settings: Settings, name: str, model: LoadedModel, metrics: Metrics, hook: PredictHook | None
) -> Servable:
    """Start a batcher in front of a warmed model."""
    batcher = Batcher(
        name,
        _predict_fn(model, hook),
        max_batch_size=settings.max_batch_size,
        max_batch_delay_s=settings.max_batch_delay_s,
        max_queue=settings.max_queue,
        metrics=metrics,
        retry_after_s=settings.retry_after_s,
        input_shape=model.input_shape,
        # A test's hook may hold the model: never on the event loop.
        inline_max_s=settings.inline_model_max_s if hook is None else 0.0,
    )
    batcher.start()
    return Servable(model, batcher)


def _predict_fn(model: LoadedModel, hook: PredictHook | None) -> Callable[[np.ndarray], np.ndarray]:
    """The model's predict, calling `hook` with each batch first when one is given."""
    if hook is None:
        return model.predict

    def predict(batch: np.ndarray) -> np.ndarray:
        hook(batch)
        return model.predict(batch)

    return predict


async def drain_and_release(servable: Servable, timeout_s: float) -> None:
    """Finish a retired version's work, then give its (frozen) objects back to the collector."""
    await servable.batcher.close(timeout_s)
    del servable
    freeze_heap()
