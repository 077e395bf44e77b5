"""A loaded model version: SavedModel + metadata + a predict function, placed on GPU or CPU."""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model_store.errors import CorruptVersion
from model_store.schema import ModelMetadata
from model_store.signature import INPUT_NAME

logger = logging.getLogger(__name__)

_configured = threading.Lock()
_device: str | None = None


def configure_tensorflow(intra_op_threads: int = 0, inter_op_threads: int = 0) -> str:
    """Place the model: GPU with memory growth when TensorFlow sees one, else CPU thread counts.

    TensorFlow accepts these settings only before it first runs, so this acts once per process
    and later calls return the device chosen the first time.
    """
    global _device
    with _configured:
        if _device is not None:
            return _device
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        try:
            if gpus:
                for gpu in gpus:
                    tf.config.experimental.set_memory_growth(gpu, True)
            else:
                if intra_op_threads:
                    tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
                if inter_op_threads:
                    tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
        except RuntimeError as exc:  # TensorFlow already initialised in this process
            logger.warning("TensorFlow placement settings not applied: %s", exc)
        _device = f"GPU x{len(gpus)}" if gpus else "CPU"
        logger.info("TensorFlow device: %s", _device)
        return _device


@dataclass(eq=False)
class LoadedModel:
    """One version in memory; `predict` is called only from its batcher's worker thread."""

    name: str
    version: int
    metadata: ModelMetadata
    directory: Path
    _function: Any = field(repr=False)
    _saved_model: Any = field(repr=False)

    @property
    def labels(self) -> list[str]:
        return self.metadata.labels

    @property
    def input_shape(self) -> tuple[int, int, int]:
        spec = self.metadata.input
        return (spec.height, spec.width, spec.channels)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 `[n, H, W, C]` -> float32 probabilities `[n, len(labels)]`."""
        import tensorflow as tf

        outputs = self._function(**{INPUT_NAME: tf.constant(pixels, dtype=tf.uint8)})
        return np.asarray(outputs[self.metadata.output].numpy(), dtype=np.float32)

    def check_output(self, batch_size: int, probabilities: np.ndarray) -> None:
        """Raise CorruptVersion unless a batch's output has the shape and values it should."""
        expected = (batch_size, len(self.labels))
        if probabilities.shape != expected:
            raise CorruptVersion(
                f"{self.name} v{self.version} returned shape {probabilities.shape} "
                f"for a batch of {batch_size}; expected {expected}"
            )
        if not np.all(np.isfinite(probabilities)):
            raise CorruptVersion(f"{self.name} v{self.version} returned non-finite values")


def load_model(store: Any, name: str, version: int, verify: bool = True) -> LoadedModel:
    """Read metadata, check the files' checksums, load the SavedModel (blocking: call off-loop)."""
    import tensorflow as tf

    metadata = store.metadata(name, version)
    directory = Path(store.version_dir(name, version))
    if verify:
        problems = store.verify(name, version, load=False)
        if problems:
            raise CorruptVersion(f"{name} v{version} failed verification: {'; '.join(problems)}")
    try:
        saved_model = tf.saved_model.load(str(directory))
        function = saved_model.signatures[metadata.signature]
    except KeyError as exc:
        raise CorruptVersion(f"{name} v{version} has no signature {metadata.signature!r}") from exc
    except Exception as exc:  # TensorFlow raises many types for a damaged SavedModel
        raise CorruptVersion(f"{name} v{version} could not be loaded: {exc}") from exc
    if metadata.output not in function.structured_outputs:
        raise CorruptVersion(f"{name} v{version} signature has no output {metadata.output!r}")
    return LoadedModel(name, version, metadata, directory, function, saved_model)


def freeze_heap() -> None:
    """Collect garbage once, then exempt every object alive now from the cyclic collector.

    A loaded SavedModel is a huge graph of long-lived Python objects; under load a full
    collection walks all of it several times a second, stopping the event loop ~200 ms each
    time (measured: the whole p99 tail). Frozen, it is never walked again. Called after a
    version loads and after one is released (unfreezing first, so its cycles are collected):
    one pause per model change instead of several per second.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def warmup_sizes(max_batch_size: int) -> list[int]:
    """A few batch sizes that cover what the batcher will send."""
    return sorted({1, min(8, max_batch_size), max_batch_size})
