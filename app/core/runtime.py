"""A loaded model version: metadata + a predict function, run by ONNX Runtime or TensorFlow.

`choose_runtime` picks the runtime per version (TAGGER_RUNTIME); `load_onnx_model` and
`load_saved_model` load one version in it. Neither runtime is imported before a version needs
it, so a process serving model.onnx never imports TensorFlow.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from model_store.errors import CorruptVersion
from model_store.onnx_model import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    cuda_provider_installed,
    load_onnx,
    onnxruntime_available,
)
from model_store.schema import ModelMetadata
from model_store.signature import INPUT_NAME, ONNX_FILE
from model_store.verify import check_file

logger = logging.getLogger(__name__)

AUTO: Final = "auto"
ONNXRUNTIME: Final = "onnxruntime"
TENSORFLOW: Final = "tensorflow"

_configured = threading.Lock()
_device: str | None = None


class RuntimeUnavailable(Exception):
    """The version cannot run in the runtime TAGGER_RUNTIME asks for, or that runtime is not
    installed here."""


def tensorflow_available() -> bool:
    """Whether TensorFlow is installed (the serve-only install has none), without importing it."""
    return importlib.util.find_spec("tensorflow") is not None


def tensorflow_missing(name: str, version: int, why: str) -> RuntimeUnavailable:
    """The error for a version that only TensorFlow can serve, in an install without it."""
    return RuntimeUnavailable(
        f"{name} v{version} needs TensorFlow ({why}), which is not installed here: "
        "pip install '.[train]' to serve it"
    )


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
    runtime: str  # ONNXRUNTIME or TENSORFLOW
    device: str  # where it runs: "CPU", "GPU x1", "CUDAExecutionProvider" ...
    _run: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    _artifact: Any = field(repr=False)  # the session or SavedModel `_run` needs alive
    # Why `auto` serves this version through TensorFlow although it has model.onnx.
    onnx_failure: str | None = None

    @property
    def labels(self) -> list[str]:
        return self.metadata.labels

    @property
    def input_shape(self) -> tuple[int, int, int]:
        spec = self.metadata.input
        return (spec.height, spec.width, spec.channels)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 `[n, H, W, C]` -> float32 probabilities `[n, len(labels)]`."""
        return self._run(pixels)

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


def has_onnx(metadata: ModelMetadata) -> bool:
    """Whether the version was published with model.onnx (older versions were not)."""
    return ONNX_FILE in metadata.files


def choose_runtime(
    setting: str, name: str, version: int, metadata: ModelMetadata, onnx_refused: str | None
) -> str:
    """The runtime a version loads in, for TAGGER_RUNTIME `setting`.

    `onnx_refused` says why ONNX Runtime should not run models here (None when it may, see
    `onnxruntime_refusal`); `auto` then keeps to TensorFlow, `onnxruntime` refuses the version.
    """
    if setting == TENSORFLOW:
        return TENSORFLOW
    if setting == ONNXRUNTIME:
        if not has_onnx(metadata):
            raise RuntimeUnavailable(
                f"{name} v{version} has no {ONNX_FILE} (published before ONNX export); "
                "TAGGER_RUNTIME=onnxruntime serves only versions with one: use auto or "
                "tensorflow to serve it"
            )
        if onnx_refused is not None:
            raise RuntimeUnavailable(f"TAGGER_RUNTIME=onnxruntime, but {onnx_refused}")
        return ONNXRUNTIME
    if setting != AUTO:
        raise ValueError(f"unknown runtime setting {setting!r}")
    return ONNXRUNTIME if has_onnx(metadata) and onnx_refused is None else TENSORFLOW


def onnxruntime_refusal(leave_gpu_to_tensorflow: bool = True) -> str | None:
    """Why ONNX Runtime should not run models in this process, or None when it may.

    TensorFlow stays the GPU path: where a GPU is visible but this onnxruntime has no CUDA
    provider (the CPU-only package), `auto` leaves the GPU to TensorFlow if it is installed;
    an explicit TAGGER_RUNTIME=onnxruntime (`leave_gpu_to_tensorflow` False), or an install
    without TensorFlow, runs on the CPU instead.
    """
    if not onnxruntime_available():
        return "onnxruntime is not installed"
    if (
        leave_gpu_to_tensorflow
        and nvidia_gpu_visible()
        and not cuda_provider_installed()
        and tensorflow_available()
    ):
        return "a GPU is visible and this onnxruntime has no CUDA provider (not onnxruntime-gpu)"
    return None


def nvidia_gpu_visible() -> bool:
    """Whether this process can see an NVIDIA GPU (a device node, not hidden by
    CUDA_VISIBLE_DEVICES), checked without importing any runtime."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def onnx_providers() -> list[str]:
    """CUDA first when onnxruntime-gpu is installed and a GPU is visible, else the CPU."""
    if cuda_provider_installed() and nvidia_gpu_visible():
        return [CUDA_PROVIDER, CPU_PROVIDER]
    return [CPU_PROVIDER]


def open_version(
    store: Any, name: str, version: int, verify: bool = True
) -> tuple[ModelMetadata, Path]:
    """Read a version's metadata and check every file's checksum but model.onnx's, which only
    the ONNX Runtime path needs (`load_onnx_model` checks it)."""
    metadata = store.metadata(name, version)
    directory = Path(store.version_dir(name, version))
    if verify:
        problems = store.verify(name, version, load=False, exclude=(ONNX_FILE,))
        if problems:
            raise CorruptVersion(f"{name} v{version} failed verification: {'; '.join(problems)}")
    return metadata, directory


def load_onnx_model(
    name: str,
    version: int,
    metadata: ModelMetadata,
    directory: Path,
    intra_op_threads: int,
    verify: bool = True,
) -> LoadedModel:
    """Check model.onnx's checksum and open an ONNX Runtime session on it (blocking)."""
    if verify:
        problem = check_file(directory, ONNX_FILE, metadata.files[ONNX_FILE])
        if problem is not None:
            raise CorruptVersion(f"{name} v{version} failed verification: {problem}")
    try:
        session = load_onnx(
            directory / ONNX_FILE, intra_op_threads=intra_op_threads, providers=onnx_providers()
        )
    except Exception as exc:  # onnxruntime's errors share no public base class
        reason = " ".join(str(exc).split())
        raise CorruptVersion(f"{name} v{version} {ONNX_FILE} does not load: {reason}") from exc
    outputs = [output.name for output in session.get_outputs()]
    if metadata.output not in outputs:
        raise CorruptVersion(f"{name} v{version} {ONNX_FILE} has no output {metadata.output!r}")
    wanted = [metadata.output]

    def run(pixels: np.ndarray) -> np.ndarray:
        feed = {INPUT_NAME: np.ascontiguousarray(pixels, dtype=np.uint8)}
        probabilities = session.run(wanted, feed)[0]
        return np.asarray(probabilities, dtype=np.float32)

    device = session.get_providers()[0]
    return LoadedModel(name, version, metadata, directory, ONNXRUNTIME, device, run, session)


def load_saved_model(
    name: str, version: int, metadata: ModelMetadata, directory: Path, device: str
) -> LoadedModel:
    """Load the SavedModel's serving signature with TensorFlow (blocking; call
    `configure_tensorflow` first, which returned `device`)."""
    import tensorflow as tf

    try:
        saved_model = tf.saved_model.load(str(directory))
        function = saved_model.signatures[metadata.signature]
    except KeyError as exc:
        raise CorruptVersion(f"{name} v{version} has no signature {metadata.signature!r}") from exc
    except Exception as exc:  # TensorFlow raises many types for a damaged SavedModel
        raise CorruptVersion(f"{name} v{version} could not be loaded: {exc}") from exc
    if metadata.output not in function.structured_outputs:
        raise CorruptVersion(f"{name} v{version} signature has no output {metadata.output!r}")
    output = metadata.output

    def run(pixels: np.ndarray) -> np.ndarray:
        outputs = function(**{INPUT_NAME: tf.constant(pixels, dtype=tf.uint8)})
        return np.asarray(outputs[output].numpy(), dtype=np.float32)

    return LoadedModel(name, version, metadata, directory, TENSORFLOW, device, run, saved_model)


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
