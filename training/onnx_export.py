"""Convert an exported serving signature to ONNX and prove the result equal to it.

`model.onnx` is a second artifact of a version, derived from the SavedModel's own signature (so
normalisation, temperature and mirror averaging come along) with the same input and output
names. It is published only if ONNX Runtime reproduces the SavedModel's probabilities on the
whole evaluation set (`model_store.onnx_model.Parity.holds`).
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import Final

import numpy as np
import tensorflow as tf

from model_store.onnx_model import PARITY_TOLERANCE, compare, load_onnx, run_onnx
from model_store.schema import OnnxExport
from model_store.signature import INPUT_NAME, ONNX_FILE
from training.batches import BatchSource, iterate_batches
from training.errors import OnnxExportError

logger = logging.getLogger(__name__)

# Inside the range tf2onnx 1.17 is tested with (opsets 14-18).
OPSET: Final = 17


def convert_signature(
    signature: tf.types.experimental.ConcreteFunction, output: Path, opset: int = OPSET
) -> None:
    """Write `signature` (a loaded SavedModel's serving signature) to `output` as ONNX."""
    import onnx
    import tf2onnx  # lazily: only publishing needs the converter

    from training.onnx_graph import fold_batch_reshapes
    from training.onnx_scales import fold_scales

    spec = signature.structured_input_signature[1][INPUT_NAME]
    pixels = tf.TensorSpec(spec.shape, spec.dtype, name=INPUT_NAME)
    # tf2onnx takes ONNX names from a tf.function's structured inputs and outputs; a loaded
    # signature's own output tensors are called Identity:0, so call it through one.
    serve = tf.function(lambda pixels: signature(**{INPUT_NAME: pixels}), input_signature=[pixels])
    model, _ = tf2onnx.convert.from_function(serve, input_signature=[pixels], opset=opset)
    fold_batch_reshapes(model)  # Flatten's shape, computed on every call, made a constant
    fold_scales(model)  # 1/255 and the temperature, multiplied into the weights once
    onnx.save(model, str(output))


def export_onnx(
    version_dir: Path,
    signature: tf.types.experimental.ConcreteFunction,
    images: np.ndarray | BatchSource,
    expected: np.ndarray,
) -> OnnxExport:
    """Write `<version_dir>/model.onnx` and check that ONNX Runtime gives `expected` (the
    signature's probabilities for `images`); `OnnxExportError` in one line if it does not."""
    output = version_dir / ONNX_FILE
    start = time.monotonic()
    try:
        convert_signature(signature, output)
    except Exception as exc:  # the converter raises anything from KeyError to its own errors
        raise OnnxExportError(f"ONNX conversion failed: {_one_line(exc)}") from exc
    seconds = time.monotonic() - start
    try:
        session = load_onnx(output)
        outputs = [run_onnx(session, batch) for batch in iterate_batches(images, 500)]
        probabilities = np.concatenate(outputs) if outputs else np.zeros_like(expected)
    except Exception as exc:  # onnxruntime's errors share no public base class
        problem = f"{ONNX_FILE} does not run in ONNX Runtime: {_one_line(exc)}"
        raise OnnxExportError(problem) from exc
    parity = compare(expected, probabilities)
    if not parity.holds(PARITY_TOLERANCE):
        raise OnnxExportError(
            f"{ONNX_FILE} does not match the SavedModel on the {parity.images} evaluation "
            f"images: {parity.describe(PARITY_TOLERANCE)}; nothing was published"
        )
    logger.info(
        "converted to ONNX opset %d in %.1f s; on %d evaluation images %s",
        OPSET, seconds, parity.images, parity.describe(PARITY_TOLERANCE),
    )  # fmt: skip
    return OnnxExport(
        opset=OPSET,
        images=parity.images,
        max_abs_difference=parity.max_abs_difference,
        top1_agreement=parity.top1_agreement,
        tolerance=PARITY_TOLERANCE,
        seconds=round(seconds, 2),
        converter_versions=_converter_versions(),
    )


def _converter_versions() -> dict[str, str]:
    # Module versions, not distribution ones: onnxruntime may be installed as onnxruntime-gpu.
    modules = ("tf2onnx", "onnx", "onnxruntime")
    return {name: importlib.import_module(name).__version__ for name in modules}


def _one_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
