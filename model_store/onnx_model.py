"""Call a version's `model.onnx` with ONNX Runtime and measure its agreement with the SavedModel.

Publishing proves the two artifacts equal on the evaluation set (`Parity.holds`); `verify`
repeats the check on a few images. onnxruntime is imported only when a model is loaded, so
model_store stays importable without it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from model_store.signature import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    import onnxruntime

# Largest absolute difference of any probability allowed between model.onnx and the SavedModel.
PARITY_TOLERANCE: Final = 1e-4


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


CPU_PROVIDER: Final = "CPUExecutionProvider"
CUDA_PROVIDER: Final = "CUDAExecutionProvider"


def load_onnx(
    path: Path, *, intra_op_threads: int = 0, providers: Sequence[str] = (CPU_PROVIDER,)
) -> onnxruntime.InferenceSession:
    """A session for `path`, on the CPU unless `providers` says otherwise. `intra_op_threads`
    is the threads one operator may use, the calling one included (0 lets ONNX Runtime take
    one per physical core); operators run one after another, the graph being a single chain."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Pool threads sleep between calls instead of spinning: one worker on 16 cores (15 intra-op
    # threads) spent 9.0 CPU ms per request spinning, 0.67 without (benchmarks/results/
    # 2026-11-27-16-core-host-workers-spinning.md and 2026-11-27-16-core-host-workers.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=list(providers))


def cuda_provider_installed() -> bool:
    """Whether this onnxruntime can run on a GPU at all (onnxruntime-gpu lists the CUDA
    provider whether or not a GPU is visible)."""
    import onnxruntime as ort

    return CUDA_PROVIDER in ort.get_available_providers()


def run_onnx(
    session: onnxruntime.InferenceSession, images: np.ndarray, batch_size: int = 500
) -> np.ndarray:
    """Probabilities float32 `[N, classes]` for uint8 `images`, in batches (as `run_signature`)."""
    batches = (images[start : start + batch_size] for start in range(0, len(images), batch_size))
    feeds = ({INPUT_NAME: np.ascontiguousarray(batch)} for batch in batches)
    outputs = [session.run([OUTPUT_NAME], feed)[0] for feed in feeds]
    if not outputs:
        return np.zeros((0, session.get_outputs()[0].shape[-1]), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32)


@dataclass(frozen=True)
class Parity:
    """How far two artifacts' probabilities for the same images are apart."""

    images: int
    max_abs_difference: float
    top1_agreement: float  # fraction of images with the same most probable class

    def holds(self, tolerance: float = PARITY_TOLERANCE) -> bool:
        # Written so that a NaN difference fails.
        return self.max_abs_difference <= tolerance and self.top1_agreement == 1.0

    def describe(self, tolerance: float = PARITY_TOLERANCE) -> str:
        agreeing = round(self.top1_agreement * self.images)
        return (
            f"max abs difference {self.max_abs_difference:.3g} (limit {tolerance:g}), "
            f"top-1 agreement {agreeing}/{self.images} images (all required)"
        )


def compare(reference: np.ndarray, candidate: np.ndarray) -> Parity:
    """The parity of `candidate` probabilities with `reference`, row by row."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shapes differ: {list(reference.shape)} vs {list(candidate.shape)}")
    if len(reference) == 0:
        return Parity(0, 0.0, 1.0)
    difference = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    same_top1 = reference.argmax(axis=1) == candidate.argmax(axis=1)
    return Parity(len(reference), float(np.max(difference)), float(np.mean(same_top1)))
