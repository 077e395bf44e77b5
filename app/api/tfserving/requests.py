"""TensorFlow Serving `:predict` and `:classify` request bodies, pure: JSON documents in,
encoded images or uint8 pixels out.

Follows what TF Serving itself does (`tensorflow_serving/util/json_tensor.cc`,
`model_servers/http_rest_api_handler.cc`), not only its prose documentation; messages reuse
TF Serving's wording where it has one.

Beyond TF Serving (whose `pixels` input is uint8 and would refuse `{"b64": ...}`), an
instance may be an encoded image, which the service decodes and fits like an upload; and
`:classify` reads the image feature of each example instead of needing a classify signature.
Every refusal is `InvalidInput` (`MALFORMED` is 400, `TOO_LARGE` 413 for too many images).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import numpy as np

from app.api.json_body import JsonBodyError, JsonLimits, parse_json_body
from app.core.errors import InputProblem, InvalidInput
from model_store.signature import INPUT_NAME, SIGNATURE_NAME

B64_KEY: Final = "b64"
IMAGE_FEATURE: Final = "image"
_MAX_DEPTH: Final = 8  # {"instances": [{"pixels": [[[v]]]}]} nests 6 deep


class PredictFormat(Enum):
    """How a `:predict` request gave its tensors, and so how the answer is shaped."""

    ROW = "instances"  # answered as "predictions"
    COLUMNAR = "inputs"  # answered as "outputs"


@dataclass(frozen=True, slots=True)
class PredictRequest:
    """A parsed `:predict` body: encoded `images`, or decoded `pixels` uint8 [N, H, W, C]."""

    format: PredictFormat
    images: list[bytes] | None = None
    pixels: np.ndarray | None = None

    @property
    def count(self) -> int:
        """How many images the request holds."""
        if self.images is not None:
            return len(self.images)
        return 0 if self.pixels is None else int(self.pixels.shape[0])


def json_limits(max_items: int, input_shape: tuple[int, int, int]) -> JsonLimits:
    """Limits for a TF Serving body of at most `max_items` instances of pixel lists: each
    instance is H*W*C numbers plus its H*W + H + 1 lists, with room for the keys around them."""
    height, width, channels = input_shape
    per_instance = height * width * channels + height * width + height + 8
    return JsonLimits(
        max_depth=_MAX_DEPTH,
        max_values=max_items * per_instance + 64,
        max_instances=max_items,
    )


def parse_json(body: bytes, limits: JsonLimits) -> object:
    """The JSON document in `body`, refused as `InvalidInput` when malformed or past `limits`."""
    try:
        return parse_json_body(body, limits)
    except JsonBodyError as exc:
        problem = InputProblem.TOO_LARGE if exc.status == 413 else InputProblem.MALFORMED
        raise InvalidInput(exc.message, exc.code, problem) from None


def parse_predict(
    document: object, *, input_name: str, input_shape: tuple[int, int, int], max_items: int
) -> PredictRequest:
    """A `:predict` body: `{"signature_name"?, "instances": [...]}` (row) or
    `{"signature_name"?, "inputs": ...}` (columnar).

    Each instance is `{"b64": "<image file>"}` or a [H, W, C] nested list of integers 0-255; in
    row format either may sit in an object keyed by `input_name`, in columnar format the list of
    them may be the value of an object keyed by `input_name`. All instances are of one kind.
    """
    body = _object(document)
    _check_signature(body)
    if "instances" in body and "inputs" in body:
        raise _malformed(
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist",
            "ambiguous_format",
        )
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise _malformed("Expecting 'instances' to be an list/array", "invalid_instances")
        _check_count(len(instances), max_items, "'instances' array")
        values = [_row_item(item, index, input_name) for index, item in enumerate(instances)]
        return _request(PredictFormat.ROW, values, input_name, input_shape)
    if "inputs" in body:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and not _is_b64(inputs):
            if input_name not in inputs:
                raise _malformed(
                    f"Missing named input: {input_name} in 'inputs' object.", "missing_input"
                )
            inputs = inputs[input_name]
        if not isinstance(inputs, list):
            raise _malformed(
                f'input {input_name!r}: expected a list of {{"b64": ...}} images or a '
                f"{_shape_text(input_shape)} nested list of uint8 values",
                "wrong_shape",
            )
        _check_count(len(inputs), max_items, "'inputs' tensor")
        return _request(PredictFormat.COLUMNAR, inputs, input_name, input_shape)
    raise _malformed("Missing 'inputs' or 'instances' key", "missing_inputs")


def parse_classify(document: object, *, max_items: int) -> list[bytes]:
    """The images of a `:classify` body: `{"signature_name"?, "context"?, "examples": [...]}`,
    one image per example given as a `{"b64": ...}` feature (or a list of exactly one).

    `context` features are merged into each example, the example's own winning (TF Serving
    concatenates the serialized protos, so the later map entry wins). The image is the feature
    named `image`, else `pixels`, else the example's only binary feature; other features are
    ignored, as a model whose parsing spec does not read them would.
    """
    body = _object(document)
    _check_signature(body)
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise _malformed(
            f"Example must be JSON object but got JSON {_json_type(context)}", "invalid_context"
        )
    if "examples" not in body:
        raise _malformed(
            "When method is classify, key 'examples' is expected and was not found",
            "missing_examples",
        )
    examples = body["examples"]
    if not isinstance(examples, list):
        raise _malformed("Expecting 'examples' value to be an list/array", "invalid_examples")
    _check_count(len(examples), max_items, "'examples' value")
    return [_example_image(example, index, context) for index, example in enumerate(examples)]


def _object(document: object) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise _malformed(
            f"JSON Value: the request body is a JSON {_json_type(document)}; Is not object",
            "invalid_body",
        )
    return document


def _check_signature(body: dict[str, Any]) -> None:
    name = body.get("signature_name", "")
    if not isinstance(name, str):
        raise _malformed(
            "JSON Value: not formatted correctly. 'signature_name' key must be a string value.",
            "invalid_signature_name",
        )
    if name not in ("", SIGNATURE_NAME):
        shown = name if len(name) <= 100 else name[:100] + "..."
        raise InvalidInput(
            f'Serving signature name: "{shown}" not found in signature def',
            "unknown_signature",
        )


def _check_count(count: int, max_items: int, where: str) -> None:
    if count == 0:
        raise _malformed(f"No values in {where}", "no_instances")
    if count > max_items:
        raise InvalidInput(
            f"{count} images in one request; the limit is {max_items}",
            "too_many_images",
            InputProblem.TOO_LARGE,
        )


def _row_item(item: object, index: int, input_name: str) -> object:
    """An instance of the row format, unwrapped from `{input_name: ...}`."""
    if not isinstance(item, dict) or B64_KEY in item:
        return item
    if set(item) != {input_name}:
        keys = ", ".join(sorted(item)[:8]) or "none"
        raise _malformed(
            f"Failed to process element: {index} of 'instances' list. JSON object keys "
            f"({keys}) must be equal to: {input_name}",
            "unknown_input",
        )
    return item[input_name]


def _request(
    format_: PredictFormat, values: list[object], input_name: str, shape: tuple[int, int, int]
) -> PredictRequest:
    encoded = [isinstance(value, dict) and B64_KEY in value for value in values]
    if all(encoded):
        images = [
            _decode_b64(value, f"input {input_name!r} element {index}")
            for index, value in enumerate(values)
        ]
        return PredictRequest(format_, images=images)
    if any(encoded):
        raise _malformed(
            f'input {input_name!r}: mixes {{"b64": ...}} images with pixel lists; send one kind',
            "mixed_inputs",
        )
    return PredictRequest(format_, pixels=_pixel_batch(values, input_name, shape))


def _pixel_batch(values: list[object], name: str, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 [N, H, W, C] from N nested lists, each checked for its shape, its values' JSON type
    and their range (TF Serving would refuse a non-integer; this also refuses a wrapped one)."""
    batch = np.empty((len(values), *shape), dtype=np.uint8)
    for index, value in enumerate(values):
        try:
            cells: np.ndarray | None = np.array(value, dtype=object)
        except ValueError:  # ragged in a way numpy will not hold even as objects
            cells = None
        if cells is None or cells.shape != shape:
            raise _malformed(
                f"input {name!r}: expected shape [-1, {', '.join(map(str, shape))}] (each "
                f"instance {_shape_text(shape)} of uint8); instance {index} is "
                f"{_found_shape(value, cells)}",
                "wrong_shape",
            )
        flat = cells.ravel().tolist()  # Python objects: bools and floats stay what they were
        kinds = set(map(type, flat))
        if kinds != {int}:
            wrong = next(value for value in flat if type(value) is not int)
            raise _malformed(
                f"input {name!r}: instance {index} holds a JSON {_json_type(wrong)} "
                "where an integer 0-255 (uint8) is expected",
                "wrong_datatype",
            )
        if max(flat) > 255 or min(flat) < 0:
            wrong = next(value for value in flat if not 0 <= value <= 255)
            raise _malformed(
                f"input {name!r}: instance {index} holds {_short(wrong)}, outside uint8 (0-255)",
                "value_out_of_range",
            )
        batch[index] = np.array(flat, dtype=np.uint8).reshape(shape)
    return batch


def _example_image(example: object, index: int, context: dict[str, Any]) -> bytes:
    if not isinstance(example, dict):
        raise _malformed(
            f"Example must be JSON object but got JSON {_json_type(example)}", "invalid_example"
        )
    features = {**context, **example}
    binary = [name for name, value in features.items() if _binary_feature(value)]
    named = [name for name in (IMAGE_FEATURE, INPUT_NAME) if name in binary]
    if named:
        binary = named[:1]
    elif len(binary) > 1:
        raise _malformed(
            f"example {index}: several binary features ({', '.join(sorted(binary))}); "
            f"send one image per example, or name it {IMAGE_FEATURE!r}",
            "ambiguous_image_feature",
        )
    if not binary:
        raise _malformed(
            f'example {index}: no image feature; expected {{"{IMAGE_FEATURE}": {{"b64": '
            '"<base64 image file>"}}',
            "missing_image",
        )
    name = binary[0]
    value = features[name]
    if isinstance(value, list):
        if len(value) != 1:
            raise _malformed(
                f"example {index}: feature {name!r} holds {len(value)} values; "
                "one image per example",
                "too_many_values",
            )
        value = value[0]
    return _decode_b64(value, f"example {index} feature {name!r}")


def _binary_feature(value: object) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, dict) and B64_KEY in item for item in value)
    return isinstance(value, dict) and B64_KEY in value


def _is_b64(value: object) -> bool:
    """TF Serving's test: an object whose only key is `b64`, holding a string."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64_KEY), str)


def _decode_b64(value: object, where: str) -> bytes:
    """The bytes of `{"b64": "<base64>"}`, refused with `bad_base64` when it is not that."""
    if not _is_b64(value):
        raise InvalidInput(
            f'{where}: not formatted correctly for base64 data; expected {{"b64": "<base64>"}}',
            "bad_base64",
        )
    compact = "".join(value[B64_KEY].split())  # type: ignore[index]
    if "=" not in compact:
        compact += "=" * (-len(compact) % 4)  # absl's Base64Unescape accepts unpadded input
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"Unable to base64 decode {where}: {exc}", "bad_base64") from None
    if not data:
        raise _malformed(f"{where} is empty: no image bytes", "empty_image")
    return data


def _malformed(message: str, code: str) -> InvalidInput:
    return InvalidInput(message, code, InputProblem.MALFORMED)


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _found_shape(value: object, cells: np.ndarray | None) -> str:
    if not isinstance(value, list):
        return f"a JSON {_json_type(value)}, not a nested list"
    if cells is None:
        return "ragged: its lists differ in length"
    if any(isinstance(cell, list) for cell in cells.flat):
        return f"ragged: its lists differ in length below {_shape_text(cells.shape)}"
    return f"a nested list of shape {_shape_text(cells.shape)}"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
