"""TensorFlow Serving `:predict` and `:classify` answers and its error body, as TF Serving
writes them (`tensorflow_serving/util/json_tensor.cc`, `model_servers/http_rest_api_handler.cc`):
`:classify` answers `results` (the g3doc's format section says `result`; the server, its tests
and the g3doc's own example say `results`); a signature with one output answers `predictions` /
`outputs` as a plain list, not keyed by the output name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.api.tfserving.requests import PredictFormat


def encode_predict(probabilities: np.ndarray, format_: PredictFormat) -> dict[str, Any]:
    """`{"predictions": [[p, ...], ...]}` (row) or `{"outputs": [[p, ...], ...]}` (columnar):
    the signature has one output, so TF Serving leaves its name out in both formats."""
    key = "predictions" if format_ is PredictFormat.ROW else "outputs"
    return {key: _float32_rows(probabilities)}


def encode_classify(probabilities: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """`{"results": [[[label, score], ...], ...]}`: every class, in the model's label order, as
    TF Serving's classifier writes the scores tensor (it does not sort them)."""
    rows = _float32_rows(probabilities)
    return {
        "results": [
            [[label, score] for label, score in zip(labels, row, strict=True)] for row in rows
        ]
    }


def error_body(message: str) -> dict[str, str]:
    """TF Serving's error body."""
    return {"error": message}


def _float32_rows(probabilities: np.ndarray) -> list[list[float]]:
    """float32 values at their shortest round-trip decimal (TF Serving's `WriteDecimal`), so
    0.1 is written 0.1, not 0.10000000149011612."""
    values = np.asarray(probabilities, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"probabilities must be [N, K], got shape {values.shape}")
    return values.astype(str).astype(np.float64).tolist()
