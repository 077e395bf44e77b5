"""Open Inference Protocol v2 inference bodies over HTTP, as bytes in and typed tensors out.

Pure: no HTTP framework, no model. It reads the `$inference_request` JSON of the spec
(kserve/open-inference-protocol, `inference_rest.md`) with Triton's extensions as `tritonclient`
speaks them, and writes the `$inference_response`:

- binary tensor data: the JSON header is the first `Inference-Header-Content-Length` bytes of
  the body; after it come the binary tensors, in input order, each `parameters.binary_data_size`
  bytes, little-endian and row-major; a BYTES element is a 4-byte little-endian length and the
  bytes. An output is binary when its `parameters.binary_data` says so, else when the request's
  `parameters.binary_data_output` does.
- classification: an output requested with `parameters.classification = k` answers BYTES
  `"<score>:<index>[:<label>]"` strings, the top k per batch row, shape `[N, k]`.

Every refusal is an `InvalidInput` whose message names the tensor or field and what was expected.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.api.json_body import JsonBodyError, JsonLimits, parse_json_body
from app.core.errors import InputProblem, InvalidInput

BYTES = "BYTES"
MAX_RANK = 32  # numpy's limit is 64 (32 before numpy 2)
_MAX_DIM = (1 << 63) - 1  # the spec: a dimension is representable as uint64; Triton reads int64
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Datatype:
    """A tensor datatype of the spec: its name and little-endian numpy dtype (None for BYTES)."""

    name: str
    dtype: np.dtype | None

    @property
    def itemsize(self) -> int | None:
        return None if self.dtype is None else self.dtype.itemsize


DATATYPES: dict[str, Datatype] = {
    name: Datatype(name, None if code is None else np.dtype(code))
    for name, code in (
        ("BOOL", "?"),
        ("UINT8", "<u1"),
        ("UINT16", "<u2"),
        ("UINT32", "<u4"),
        ("UINT64", "<u8"),
        ("INT8", "<i1"),
        ("INT16", "<i2"),
        ("INT32", "<i4"),
        ("INT64", "<i8"),
        ("FP16", "<f2"),
        ("FP32", "<f4"),
        ("FP64", "<f8"),
        (BYTES, None),
    )
}
# Triton knows BF16, which numpy cannot hold without ml_dtypes: refused as unsupported.
_KNOWN_UNSUPPORTED = frozenset({"BF16"})


@dataclass(frozen=True, slots=True)
class InputTensor:
    """One request input. `data` is a (possibly read-only) array of `shape` for numeric
    datatypes, or the flat row-major list of elements for BYTES."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: dict[str, Any]
    data: np.ndarray | list[bytes]


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """One entry of the request's `outputs`: `binary_data` None when not given, and
    `classification` None unless a top-k count above zero was asked for."""

    name: str
    binary_data: bool | None = None
    classification: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InferRequest:
    """A parsed inference request. `outputs` is empty when the request named none (then every
    output is answered, binary when `binary_data_output`)."""

    id: str | None
    parameters: dict[str, Any]
    inputs: list[InputTensor]
    outputs: list[RequestedOutput]
    binary_data_output: bool = False

    def wants_binary(self, output: RequestedOutput | None) -> bool:
        """Whether `output` (None: one the request did not name) is answered as binary data:
        its own `binary_data` when given, else the request's `binary_data_output`."""
        if output is not None and output.binary_data is not None:
            return output.binary_data
        return self.binary_data_output


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


def _refuse(
    message: str, code: str, problem: InputProblem = InputProblem.MALFORMED
) -> InvalidInput:
    return InvalidInput(message, code, problem)


# ---------------------------------------------------------------------------------------------
# Requests


def parse_header_length(value: str | None) -> int | None:
    """The `Inference-Header-Content-Length` header as a byte count (None when absent)."""
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise _refuse(
            f"Inference-Header-Content-Length must be a byte count, got {value[:40]!r}",
            "invalid_header_length",
        )
    return int(text)


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body without its Content-Encoding (`gzip` or `deflate`, as tritonclient can send),
    refused (413) once it inflates past `limit` bytes, before more is inflated."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name not in ("gzip", "deflate"):
        raise _refuse(
            f"Content-Encoding {name[:40]!r} is not supported; send gzip, deflate or none",
            "unsupported_content_encoding",
            InputProblem.UNSUPPORTED,
        )
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if name == "gzip" else zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise _refuse(f"the {name} body cannot be inflated: {exc}", "malformed_encoding") from exc
    if len(data) > limit:
        raise _refuse(
            f"the {name} body inflates past the limit of {limit} bytes",
            "body_too_large",
            InputProblem.TOO_LARGE,
        )
    if not inflater.eof or inflater.unused_data:
        raise _refuse(f"the {name} body is truncated or has trailing bytes", "malformed_encoding")
    return data


def parse_infer_request(
    body: bytes,
    json_length: int | None,
    *,
    max_elements: int,
    max_json_values: int,
    max_json_depth: int,
) -> InferRequest:
    """Parse an inference request body; `json_length` is the Inference-Header-Content-Length
    (None: the whole body is the JSON header). At most `max_elements` tensor elements in all
    inputs together (413 past it); the JSON header is bounded by `max_json_values` and
    `max_json_depth` while it is scanned, before any value is built."""
    if json_length is None:
        header, binary = body, memoryview(b"")
    else:
        if json_length < 0 or json_length > len(body):
            raise _refuse(
                f"Inference-Header-Content-Length is {json_length} but the body holds only "
                f"{len(body)} bytes",
                "invalid_header_length",
            )
        view = memoryview(body)
        header, binary = bytes(view[:json_length]), view[json_length:]
    document = _parse_json(header, max_json_values, max_json_depth)
    if not isinstance(document, dict):
        raise _refuse("the inference request must be a JSON object", "malformed_request")

    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise _refuse("'id' must be a string", "malformed_request")
    parameters = _parameters(document, "the request")
    binary_data_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_data_output, bool):
        raise _refuse("parameter 'binary_data_output' must be true or false", "invalid_parameter")

    raw_inputs = document.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise _refuse("'inputs' must be a non-empty array of tensors", "malformed_request")
    reader = _BinaryReader(binary, json_length is not None)
    budget = _ElementBudget(max_elements)
    inputs: list[InputTensor] = []
    for position, raw in enumerate(raw_inputs):
        tensor = _parse_input(raw, position, reader, budget)
        if any(other.name == tensor.name for other in inputs):
            raise _refuse(f"input '{tensor.name}' is given twice", "duplicate_tensor_name")
        inputs.append(tensor)
    reader.finish()

    raw_outputs = document.get("outputs", [])
    if not isinstance(raw_outputs, list):
        raise _refuse("'outputs' must be an array", "malformed_request")
    outputs: list[RequestedOutput] = []
    for position, raw in enumerate(raw_outputs):
        output = _parse_output(raw, position)
        if any(other.name == output.name for other in outputs):
            raise _refuse(f"output '{output.name}' is requested twice", "duplicate_tensor_name")
        outputs.append(output)
    return InferRequest(request_id, parameters, inputs, outputs, binary_data_output)


def _parse_json(header: bytes, max_values: int, max_depth: int) -> Any:
    limits = JsonLimits(max_depth=max_depth, max_values=max_values, max_instances=max_values)
    try:
        return parse_json_body(header, limits)
    except JsonBodyError as exc:
        problem = InputProblem.TOO_LARGE if exc.status == 413 else InputProblem.MALFORMED
        raise _refuse(exc.message, exc.code, problem) from exc


def _parameters(owner: dict[str, Any], what: str) -> dict[str, Any]:
    parameters = owner.get("parameters", {})
    if not isinstance(parameters, dict):
        raise _refuse(f"'parameters' of {what} must be an object", "malformed_request")
    return parameters


class _ElementBudget:
    """The elements left to the request's inputs together."""

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements
        self.used = 0

    def take(self, name: str, count: int) -> None:
        self.used += count
        if self.used > self.max_elements:
            raise _refuse(
                f"input '{name}': the request holds more than {self.max_elements} tensor "
                f"elements; the limit is {self.max_elements}",
                "too_many_elements",
                InputProblem.TOO_LARGE,
            )


class _BinaryReader:
    """Hands out the binary section after the JSON header, tensor by tensor, in order."""

    def __init__(self, data: memoryview, has_header_length: bool) -> None:
        self.data = data
        self.offset = 0
        self.has_header_length = has_header_length

    def take(self, name: str, size: int) -> memoryview:
        left = len(self.data) - self.offset
        if size > left:
            if not self.has_header_length:
                raise _refuse(
                    f"input '{name}': binary_data_size is given but the request has no "
                    "Inference-Header-Content-Length header to say where the JSON ends",
                    "missing_header_length",
                )
            raise _refuse(
                f"input '{name}': binary_data_size is {size} bytes but only {left} bytes of "
                "binary data are left in the body",
                "truncated_binary_data",
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def finish(self) -> None:
        left = len(self.data) - self.offset
        if left:
            raise _refuse(
                f"{left} bytes of binary data follow the JSON header that no input's "
                "binary_data_size accounts for",
                "trailing_binary_data",
            )


def _parse_input(
    raw: Any, position: int, reader: _BinaryReader, budget: _ElementBudget
) -> InputTensor:
    if not isinstance(raw, dict):
        raise _refuse(f"inputs[{position}] must be an object", "malformed_request")
    name = raw.get("name")
    if not isinstance(name, str):
        raise _refuse(f"inputs[{position}]: 'name' must be a string", "malformed_request")
    label = f"input '{name}'"
    datatype = _datatype(raw.get("datatype"), label)
    shape = _shape(raw.get("shape"), label)
    count = _element_count(shape, label, budget.max_elements)
    budget.take(name, count)
    parameters = _parameters(raw, label)
    if "shared_memory_region" in parameters:
        raise _refuse(
            f"{label}: shared memory is not supported by this server; send the tensor as "
            "JSON 'data' or binary data",
            "shared_memory_unsupported",
            InputProblem.UNSUPPORTED,
        )
    has_data, has_binary = "data" in raw, "binary_data_size" in parameters
    if has_data == has_binary:
        given = "both 'data' and" if has_data else "neither 'data' nor"
        raise _refuse(
            f"{label}: exactly one of 'data' and parameters.binary_data_size must be given; "
            f"got {given} binary_data_size",
            "ambiguous_input_data" if has_data else "missing_input_data",
        )
    if has_binary:
        size = parameters["binary_data_size"]
        if not _is_int(size) or size < 0:
            raise _refuse(
                f"{label}: binary_data_size must be a byte count, got {size!r}",
                "invalid_parameter",
            )
        data = _binary_tensor(reader.take(name, size), datatype, shape, count, label)
    else:
        data = _json_tensor(raw["data"], datatype, shape, count, label)
    return InputTensor(name, datatype.name, shape, parameters, data)


def _datatype(value: Any, label: str) -> Datatype:
    if not isinstance(value, str):
        raise _refuse(f"{label}: 'datatype' must be a string", "malformed_request")
    found = DATATYPES.get(value)
    if found is not None:
        return found
    if value in _KNOWN_UNSUPPORTED:
        raise _refuse(
            f"{label}: datatype {value} is not supported by this server",
            "unsupported_datatype",
            InputProblem.UNSUPPORTED,
        )
    raise _refuse(
        f"{label}: unknown datatype {value[:40]!r}; expected one of {', '.join(DATATYPES)}",
        "unknown_datatype",
    )


def _shape(value: Any, label: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _refuse(f"{label}: 'shape' must be an array of dimensions", "invalid_shape")
    if len(value) > MAX_RANK:
        raise _refuse(
            f"{label}: 'shape' has {len(value)} dimensions; at most {MAX_RANK} are supported",
            "invalid_shape",
        )
    for dim in value:
        if not _is_int(dim) or dim < 0 or dim > _MAX_DIM:
            shown = repr(dim)[:40]
            raise _refuse(
                f"{label}: every dimension of 'shape' must be an integer from 0 to {_MAX_DIM}, "
                f"got {shown}",
                "invalid_shape",
            )
    return tuple(value)


def _element_count(shape: tuple[int, ...], label: str, max_elements: int) -> int:
    """prod(shape), refused (413) as soon as the running product passes `max_elements`, or
    when one dimension does (even beside a 0: numpy cannot shape an array so)."""
    for dim in shape:
        if dim > max_elements:
            raise _refuse(
                f"{label}: dimension {dim} of shape {_shown_shape(shape)} is more than the limit "
                f"of {max_elements} elements",
                "too_many_elements",
                InputProblem.TOO_LARGE,
            )
    if 0 in shape:
        return 0
    count = 1
    for dim in shape:
        count *= dim
        if count > max_elements:
            raise _refuse(
                f"{label}: shape {_shown_shape(shape)} holds more than {max_elements} elements; "
                f"the limit is {max_elements}",
                "too_many_elements",
                InputProblem.TOO_LARGE,
            )
    return count


def _shown_shape(shape: Sequence[int]) -> str:
    text = str(list(shape))
    return text if len(text) <= 80 else text[:77] + "...]"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _binary_tensor(
    chunk: memoryview, datatype: Datatype, shape: tuple[int, ...], count: int, label: str
) -> np.ndarray | list[bytes]:
    if datatype.dtype is None:
        return _split_bytes(chunk, count, label)
    expected = count * datatype.dtype.itemsize
    if len(chunk) != expected:
        raise _refuse(
            f"{label}: binary_data_size is {len(chunk)} bytes but shape {_shown_shape(shape)} "
            f"of {datatype.name} needs {expected} bytes",
            "binary_size_mismatch",
        )
    array = np.frombuffer(chunk, dtype=datatype.dtype, count=count).reshape(shape)
    if datatype.name == "BOOL" and count and array.view(np.uint8).max() > 1:
        raise _refuse(f"{label}: a BOOL element must be the byte 0 or 1", "value_out_of_range")
    return array


def _split_bytes(chunk: memoryview, count: int, label: str) -> list[bytes]:
    """The `count` length-prefixed elements that fill `chunk` exactly."""
    elements: list[bytes] = []
    offset, size = 0, len(chunk)
    for index in range(count):
        if offset + _LENGTH.size > size:
            raise _refuse(
                f"{label}: binary_data_size ends inside the length of element {index} of {count}",
                "bytes_length_overrun",
            )
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += _LENGTH.size
        if length > size - offset:
            raise _refuse(
                f"{label}: element {index} declares {length} bytes but only {size - offset} "
                "are left in its binary_data_size",
                "bytes_length_overrun",
            )
        elements.append(bytes(chunk[offset : offset + length]))
        offset += length
    if offset != size:
        raise _refuse(
            f"{label}: {size - offset} bytes of its binary_data_size are left after its "
            f"{count} elements",
            "binary_size_mismatch",
        )
    return elements


def _json_tensor(
    data: Any, datatype: Datatype, shape: tuple[int, ...], count: int, label: str
) -> np.ndarray | list[bytes]:
    leaves = _flatten(data, label)
    if len(leaves) != count:
        raise _refuse(
            f"{label}: 'data' holds {len(leaves)} elements but shape {_shown_shape(shape)} "
            f"needs {count}",
            "element_count_mismatch",
        )
    if datatype.dtype is None:
        if not all(isinstance(leaf, str) for leaf in leaves):
            raise _refuse(f"{label}: every BYTES element must be a string", "invalid_value")
        try:
            return [leaf.encode("utf-8") for leaf in leaves]
        except UnicodeEncodeError as exc:  # a lone surrogate escape such as "\ud800"
            raise _refuse(
                f"{label}: a BYTES element is not valid Unicode text", "invalid_value"
            ) from exc
    return _numeric(leaves, datatype, label).reshape(shape)


def _flatten(data: Any, label: str) -> list[Any]:
    """The leaves of `data` (flat or nested arrays) in row-major order, without recursion."""
    if not isinstance(data, list):
        raise _refuse(f"{label}: 'data' must be an array", "malformed_request")
    leaves: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            leaves.append(item)
        else:
            stack.pop()
    return leaves


def _numeric(leaves: list[Any], datatype: Datatype, label: str) -> np.ndarray:
    dtype = datatype.dtype
    assert dtype is not None
    if datatype.name == "BOOL":
        if not all(isinstance(leaf, bool) for leaf in leaves):
            raise _refuse(f"{label}: every BOOL element must be true or false", "invalid_value")
        return np.array(leaves, dtype=dtype)
    if dtype.kind in "iu":
        if not all(_is_int(leaf) for leaf in leaves):
            raise _refuse(
                f"{label}: every {datatype.name} element must be an integer",
                "invalid_value",
            )
        if leaves:
            info = np.iinfo(dtype)
            low, high = min(leaves), max(leaves)
            if low < info.min or high > info.max:
                bad = low if low < info.min else high
                raise _refuse(
                    f"{label}: {str(bad)[:40]} does not fit {datatype.name} "
                    f"({info.min} to {info.max})",
                    "value_out_of_range",
                )
        return np.array(leaves, dtype=dtype)
    if not all(isinstance(leaf, int | float) and not isinstance(leaf, bool) for leaf in leaves):
        raise _refuse(f"{label}: every {datatype.name} element must be a number", "invalid_value")
    try:
        values = np.array(leaves, dtype=np.float64)
    except OverflowError as exc:  # an integer beyond float64
        raise _refuse(
            f"{label}: a value does not fit {datatype.name}", "value_out_of_range"
        ) from exc
    if not np.isfinite(values).all():
        raise _refuse(f"{label}: NaN and infinities are not JSON numbers", "invalid_value")
    with np.errstate(over="ignore"):
        array = values.astype(dtype)
    if not np.isfinite(array).all():
        raise _refuse(
            f"{label}: a value is beyond the range of {datatype.name}", "value_out_of_range"
        )
    return array


def _parse_output(raw: Any, position: int) -> RequestedOutput:
    if not isinstance(raw, dict):
        raise _refuse(f"outputs[{position}] must be an object", "malformed_request")
    name = raw.get("name")
    if not isinstance(name, str):
        raise _refuse(f"outputs[{position}]: 'name' must be a string", "malformed_request")
    label = f"output '{name}'"
    parameters = _parameters(raw, label)
    if "shared_memory_region" in parameters:
        raise _refuse(
            f"{label}: shared memory is not supported by this server",
            "shared_memory_unsupported",
            InputProblem.UNSUPPORTED,
        )
    binary = parameters.get("binary_data")
    if binary is not None and not isinstance(binary, bool):
        raise _refuse(f"{label}: binary_data must be true or false", "invalid_parameter")
    classification = parameters.get("classification", 0)
    if not _is_int(classification) or classification < 0:
        raise _refuse(
            f"{label}: classification must be a count of classes, got {repr(classification)[:40]}",
            "invalid_parameter",
        )
    return RequestedOutput(name, binary, classification or None, parameters)


# ---------------------------------------------------------------------------------------------
# Responses


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
        parts.append(_LENGTH.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)


def _as_bytes(item: bytes | str) -> bytes:
    return item.encode("utf-8") if isinstance(item, str) else bytes(item)


# ---------------------------------------------------------------------------------------------
# Metadata


def tensor_metadata(name: str, datatype: str, shape: Sequence[int]) -> dict[str, Any]:
    """A `$metadata_tensor` of the model metadata response; -1 marks a variable dimension."""
    return {"name": name, "datatype": datatype, "shape": [int(dim) for dim in shape]}
