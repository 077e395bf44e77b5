"""Open Inference Protocol v2 inference requests over HTTP, as bytes in and typed tensors out.

Pure: no HTTP framework, no model. It reads the `$inference_request` JSON of the spec
(kserve/open-inference-protocol, `inference_rest.md`) with Triton's extensions as `tritonclient`
speaks them:

- binary tensor data: the JSON header is the first `Inference-Header-Content-Length` bytes of
  the body; after it come the binary tensors, in input order, each `parameters.binary_data_size`
  bytes (read by `app.api.oip.tensor_data`). An output is binary when its
  `parameters.binary_data` says so, else when the request's `parameters.binary_data_output` does.
- classification: an output requested with `parameters.classification = k` is answered with
  the top k classes (written by `app.api.oip.response`).

The datatypes and shape checks are `app.api.oip.datatypes`. Every refusal is an `InvalidInput`
whose message names the tensor or field and what was expected.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.api.json_body import JsonBodyError, JsonLimits, parse_json_body
from app.api.oip.datatypes import as_int, element_count, parse_datatype, parse_shape
from app.api.oip.tensor_data import binary_tensor, json_tensor
from app.core.errors import InputProblem, InvalidInput


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


def parse_header_length(value: str | None) -> int | None:
    """The `Inference-Header-Content-Length` header as a byte count (None when absent)."""
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise InvalidInput(
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
        raise InvalidInput(
            f"Content-Encoding {name[:40]!r} is not supported; send gzip, deflate or none",
            "unsupported_content_encoding",
            InputProblem.UNSUPPORTED,
        )
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if name == "gzip" else zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(
            f"the {name} body cannot be inflated: {exc}", "malformed_encoding"
        ) from exc
    if len(data) > limit:
        raise InvalidInput(
            f"the {name} body inflates past the limit of {limit} bytes",
            "body_too_large",
            InputProblem.TOO_LARGE,
        )
    if not inflater.eof or inflater.unused_data:
        raise InvalidInput(
            f"the {name} body is truncated or has trailing bytes", "malformed_encoding"
        )
    return data


def parse_infer_request(
    body: bytes,
    json_length: int | None,
    *,
    max_elements: int,
    max_json_values: int,
    max_json_depth: int,
    expected: Mapping[str, Collection[str]] | None = None,
) -> InferRequest:
    """Parse an inference request body; `json_length` is the Inference-Header-Content-Length
    (None: the whole body is the JSON header). At most `max_elements` tensor elements in all
    inputs together (413 past it); the JSON header is bounded by `max_json_values` and
    `max_json_depth` while it is scanned, before any value is built. `expected` (input name ->
    datatypes the model takes) refuses any other input or datatype before its shape is sized.
    """
    if json_length is None:
        header, binary = body, memoryview(b"")
    else:
        if json_length < 0 or json_length > len(body):
            raise InvalidInput(
                f"Inference-Header-Content-Length is {json_length} but the body holds only "
                f"{len(body)} bytes",
                "invalid_header_length",
            )
        view = memoryview(body)
        header, binary = bytes(view[:json_length]), view[json_length:]
    document = _parse_json(header, max_json_values, max_json_depth)
    if not isinstance(document, dict):
        raise InvalidInput("the inference request must be a JSON object", "malformed_request")

    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string", "malformed_request")
    parameters = _parameters(document, "the request")
    binary_data_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_data_output, bool):
        raise InvalidInput(
            "parameter 'binary_data_output' must be true or false", "invalid_parameter"
        )

    # The outputs first: a malformed request is refused as such before its tensors are sized.
    raw_outputs = document.get("outputs", [])
    if not isinstance(raw_outputs, list):
        raise InvalidInput("'outputs' must be an array", "malformed_request")
    outputs: list[RequestedOutput] = []
    for position, raw in enumerate(raw_outputs):
        output = _parse_output(raw, position)
        if any(other.name == output.name for other in outputs):
            raise InvalidInput(
                f"output '{output.name}' is requested twice", "duplicate_tensor_name"
            )
        outputs.append(output)

    raw_inputs = document.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput("'inputs' must be a non-empty array of tensors", "malformed_request")
    reader = _BinaryReader(binary, json_length is not None)
    budget = _ElementBudget(max_elements)
    inputs: list[InputTensor] = []
    for position, raw in enumerate(raw_inputs):
        tensor = _parse_input(raw, position, reader, budget, expected)
        if any(other.name == tensor.name for other in inputs):
            raise InvalidInput(f"input '{tensor.name}' is given twice", "duplicate_tensor_name")
        inputs.append(tensor)
    reader.finish()
    return InferRequest(request_id, parameters, inputs, outputs, binary_data_output)


def _parse_json(header: bytes, max_values: int, max_depth: int) -> Any:
    limits = JsonLimits(max_depth=max_depth, max_values=max_values, max_instances=max_values)
    try:
        return parse_json_body(header, limits)
    except JsonBodyError as exc:
        problem = InputProblem.TOO_LARGE if exc.status == 413 else InputProblem.MALFORMED
        raise InvalidInput(exc.message, exc.code, problem) from exc


def _parameters(owner: dict[str, Any], what: str) -> dict[str, Any]:
    parameters = owner.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidInput(f"'parameters' of {what} must be an object", "malformed_request")
    return parameters


class _ElementBudget:
    """The elements left to the request's inputs together."""

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements
        self.used = 0

    def take(self, name: str, count: int) -> None:
        self.used += count
        if self.used > self.max_elements:
            raise InvalidInput(
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
                raise InvalidInput(
                    f"input '{name}': binary_data_size is given but the request has no "
                    "Inference-Header-Content-Length header to say where the JSON ends",
                    "missing_header_length",
                )
            raise InvalidInput(
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
            raise InvalidInput(
                f"{left} bytes of binary data follow the JSON header that no input's "
                "binary_data_size accounts for",
                "trailing_binary_data",
            )


def _parse_input(
    raw: Any,
    position: int,
    reader: _BinaryReader,
    budget: _ElementBudget,
    expected: Mapping[str, Collection[str]] | None,
) -> InputTensor:
    name = _tensor_name(raw, f"inputs[{position}]")
    label = f"input '{name}'"
    datatype = parse_datatype(raw.get("datatype"), label)
    if expected is not None:
        check_expected(name, datatype.name, expected)
    shape = parse_shape(raw.get("shape"), label)
    count = element_count(shape, label, budget.max_elements)
    budget.take(name, count)
    parameters = _parameters(raw, label)
    if "shared_memory_region" in parameters:
        raise InvalidInput(
            f"{label}: shared memory is not supported by this server; send the tensor as "
            "JSON 'data' or binary data",
            "shared_memory_unsupported",
            InputProblem.UNSUPPORTED,
        )
    has_data, has_binary = "data" in raw, "binary_data_size" in parameters
    if has_data == has_binary:
        given = "both 'data' and" if has_data else "neither 'data' nor"
        raise InvalidInput(
            f"{label}: exactly one of 'data' and parameters.binary_data_size must be given; "
            f"got {given} binary_data_size",
            "ambiguous_input_data" if has_data else "missing_input_data",
        )
    if has_binary:
        size = as_int(parameters["binary_data_size"])
        if size is None or size < 0:
            raise InvalidInput(
                f"{label}: binary_data_size must be a byte count, "
                f"got {repr(parameters['binary_data_size'])[:40]}",
                "invalid_parameter",
            )
        data = binary_tensor(reader.take(name, size), datatype, shape, count, label)
    else:
        data = json_tensor(raw["data"], datatype, shape, count, label)
    return InputTensor(name, datatype.name, shape, parameters, data)


def _tensor_name(raw: Any, where: str) -> str:
    """The `name` of one entry of `inputs` or `outputs` (`where`), which must be an object."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object", "malformed_request")
    name = raw.get("name")
    if not isinstance(name, str):
        raise InvalidInput(f"{where}: 'name' must be a string", "malformed_request")
    return name


def _parse_output(raw: Any, position: int) -> RequestedOutput:
    name = _tensor_name(raw, f"outputs[{position}]")
    label = f"output '{name}'"
    parameters = _parameters(raw, label)
    if "shared_memory_region" in parameters:
        raise InvalidInput(
            f"{label}: shared memory is not supported by this server",
            "shared_memory_unsupported",
            InputProblem.UNSUPPORTED,
        )
    binary = parameters.get("binary_data")
    if binary is not None and not isinstance(binary, bool):
        raise InvalidInput(f"{label}: binary_data must be true or false", "invalid_parameter")
    given = parameters.get("classification", 0)
    classification = as_int(given)
    if classification is None or classification < 0:
        raise InvalidInput(
            f"{label}: classification must be a count of classes, got {repr(given)[:40]}",
            "invalid_parameter",
        )
    return RequestedOutput(name, binary, classification or None, parameters)


def check_expected(name: str, datatype: str, expected: Mapping[str, Collection[str]]) -> None:
    """Refuse an input the model does not have (`unknown_input`) or a datatype it does not
    take (`invalid_datatype`)."""
    if name not in expected:
        wanted = "; ".join(f"{known!r} ({' or '.join(types)})" for known, types in expected.items())
        count = "one input" if len(expected) == 1 else "inputs"
        raise InvalidInput(f"expected {count} {wanted}, got {name[:40]!r}", "unknown_input")
    if datatype not in expected[name]:
        allowed = " or ".join(expected[name])
        raise InvalidInput(
            f"input {name!r}: expected datatype {allowed}, got {datatype}", "invalid_datatype"
        )
