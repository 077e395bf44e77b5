"""TensorFlow Serving's model metadata (`GetModelMetadataResponse`) of a published version:
the SavedModel's `SignatureDefMap` printed with proto field names and every field, as TF
Serving prints it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from model_store.signature import INPUT_NAME, OUTPUT_NAME, SIGNATURE_NAME

PREDICT_METHOD: Final = "tensorflow/serving/predict"
INIT_OP_SIGNATURE: Final = "__saved_model_init_op"
# The graph names a Keras export gives the signature's tensors (read from a published version).
INPUT_TENSOR_NAME: Final = f"{SIGNATURE_NAME}_{INPUT_NAME}:0"
OUTPUT_TENSOR_NAME: Final = "StatefulPartitionedCall:0"


def model_metadata(
    name: str, version: int, input_shape: tuple[int, int, int], labels_count: int
) -> dict[str, Any]:
    """`GetModelMetadataResponse` for a published version, as TF Serving prints it (proto field
    names, every field): the SavedModel's two signatures, `serving_default` (uint8 `pixels`
    [-1, H, W, C] to float32 `probabilities` [-1, K]) and the TF2 `__saved_model_init_op`."""
    serving_default = {
        "inputs": {INPUT_NAME: _tensor_info("DT_UINT8", (-1, *input_shape), INPUT_TENSOR_NAME)},
        "outputs": {OUTPUT_NAME: _tensor_info("DT_FLOAT", (-1, labels_count), OUTPUT_TENSOR_NAME)},
        "method_name": PREDICT_METHOD,
        "defaults": {},
    }
    init_op = {
        "inputs": {},
        "outputs": {
            INIT_OP_SIGNATURE: {
                "dtype": "DT_INVALID",
                "tensor_shape": {"dim": [], "unknown_rank": True},
                "name": "NoOp",
            }
        },
        "method_name": "",
        "defaults": {},
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {
            "signature_def": {
                "signature_def": {SIGNATURE_NAME: serving_default, INIT_OP_SIGNATURE: init_op}
            }
        },
    }


def _tensor_info(dtype: str, shape: Sequence[int], tensor_name: str) -> dict[str, Any]:
    return {
        "dtype": dtype,
        "tensor_shape": {
            "dim": [{"size": str(size), "name": ""} for size in shape],
            "unknown_rank": False,
        },
        "name": tensor_name,
    }
