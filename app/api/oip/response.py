"""Open Inference Protocol v2 inference responses and model metadata tensors, as typed
tensors in and bytes out.

Pure: no HTTP framework, no model. It writes the `$inference_response` of the spec
(kserve/open-inference-protocol, `inference_rest.md`) with Triton's extensions as `tritonclient`
reads them:

- binary tensor data: an output sent as binary data follows the JSON header, in output order,
  `parameters.binary_data_size` bytes, little-endian and row-major; a BYTES element is a 4-byte
  little-endian length and the bytes. The JSON header's length is the response's
  `Inference-Header-Content-Length`.
- classification: Triton's BYTES `"<score>:<index>[:<label>]"` strings, the top k per batch
  row, shape `[N, k]`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.api.oip.datatypes import BYTES, BYTES_LENGTH, DATATYPES


@dataclass(frozen=True, slots=True)
class OutputTensor:
    """One response output: `data` holds `shape` elements (an object array of bytes for
    BYTES); `binary` sends it after the JSON header instead of as JSON `data`."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    binary: bool

    def __post_init__(self) -> None:
        if self.datatype not in DATATYPES:
            raise ValueError(f"output '{self.name}': unknown datatype {self.datatype!r}")
        if math.prod(self.shape) != self.data.size:
            raise ValueError(
                f"output '{self.name}': shape {list(self.shape)} does not hold "
                f"{self.data.size} elements"
            )


def classification_strings(probabilities: np.ndarray, k: int, labels: Sequence[str]) -> np.ndarray:
    """Triton's classification output for `probabilities` [N, K]: a bytes object array
    [N, min(k, K)] of `"<score>:<index>:<label>"`, highest score first, ties to the lower index.

    The score is C++ `std::to_string` of the value, i.e. `printf("%f")` ("0.998573"); the label
    part is left out for an index without a label, as Triton does.
    """
    if k < 1:
        raise ValueError(f"classification needs a count of at least 1, got {k}")
    scores = np.asarray(probabilities)
    if scores.ndim != 2:
        raise ValueError(f"classification needs a [N, K] tensor, got shape {scores.shape}")
    rows, classes = scores.shape
    top = min(k, classes)
    order = np.argsort(-scores.astype(np.float64), axis=1, kind="stable")[:, :top]
    out = np.empty((rows, top), dtype=object)
    for row in range(rows):
        for column, index in enumerate(order[row].tolist()):
            text = f"{float(scores[row, index]):f}:{index}"
            if index < len(labels):
                text += f":{labels[index]}"
            out[row, column] = text.encode("utf-8")
    return out


def encode_infer_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Sequence[OutputTensor],
) -> tuple[bytes, int | None]:
    """The response body and its JSON header length for `Inference-Header-Content-Length`
    (None when no output is binary: the body is then JSON alone). `id` only when the request
    gave one; binary outputs follow the JSON in output order."""
    document: dict[str, Any] = {}
    if request_id is not None:
        document["id"] = request_id
    document["model_name"] = model_name
    document["model_version"] = model_version
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for output in outputs:
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": output.datatype,
            "shape": [int(dim) for dim in output.shape],
        }
        if output.binary:
            chunk = _binary_output(output)
            entry["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            entry["data"] = _json_output(output)
        entries.append(entry)
    document["outputs"] = entries
    header = json.dumps(document, separators=(",", ":")).encode()
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def _binary_output(output: OutputTensor) -> bytes:
    dtype = DATATYPES[output.datatype].dtype
    if dtype is None:
        return serialize_bytes(output.data)
    return np.ascontiguousarray(output.data, dtype=dtype).tobytes()


def _json_output(output: OutputTensor) -> list[Any]:
    if output.datatype == BYTES:
        return [_as_bytes(item).decode("utf-8") for item in output.data.reshape(-1).tolist()]
    dtype = DATATYPES[output.datatype].dtype
    return np.asarray(output.data, dtype=dtype).reshape(-1).tolist()


def serialize_bytes(data: np.ndarray | Sequence[bytes | str]) -> bytes:
    """BYTES elements, row-major, each as a 4-byte little-endian length and its bytes."""
    items = data.reshape(-1).tolist() if isinstance(data, np.ndarray) else list(data)
    parts: list[bytes] = []
    for item in items:
        raw = _as_bytes(item)
        parts.append(BYTES_LENGTH.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)


def _as_bytes(item: bytes | str) -> bytes:
    return item.encode("utf-8") if isinstance(item, str) else bytes(item)


def tensor_metadata(name: str, datatype: str, shape: Sequence[int]) -> dict[str, Any]:
    """A `$metadata_tensor` of the model metadata response; -1 marks a variable dimension."""
    return {"name": name, "datatype": datatype, "shape": [int(dim) for dim in shape]}
