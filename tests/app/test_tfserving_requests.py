"""TF Serving REST request bodies: `:predict` and `:classify` bodies from TF Serving's REST
documentation (g3doc/api_rest.md) and its handler tests (http_rest_api_handler_test.cc,
json_tensor.cc), asserted field by field, and every refusal with its status class, code and a
message naming what was wrong."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from app.api.tfserving.requests import (
    PredictFormat,
    PredictRequest,
    json_limits,
    parse_classify,
    parse_json,
    parse_predict,
)
from app.core.errors import InputProblem, InvalidInput

SHAPE = (28, 28, 1)
MAX_ITEMS = 4
PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def image_pixels(seed: int, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def predict(document: object, shape: tuple[int, int, int] = SHAPE) -> PredictRequest:
    return parse_predict(document, input_name="pixels", input_shape=shape, max_items=MAX_ITEMS)


def refused(call, *args, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    return caught.value


# --- :predict, accepted -------------------------------------------------------------------


def test_row_format_of_the_docs_two_tensors_in_nested_notation() -> None:
    # api_rest.md: {"instances": [ [[1, 2]], [[3, 4]] ]}, "2 tensors each of [1, 2] shape";
    # this model's input has a channel axis, so each value is a list of one.
    request = predict({"instances": [[[[1], [2]]], [[[3], [4]]]]}, shape=(1, 2, 1))
    assert request.format is PredictFormat.ROW
    assert request.images is None
    assert request.pixels is not None and request.pixels.dtype == np.uint8
    assert request.pixels.shape == (2, 1, 2, 1)
    assert request.pixels[:, 0, :, 0].tolist() == [[1, 2], [3, 4]]
    assert request.count == 2


def test_row_format_of_pixel_lists_plain_and_keyed_by_the_input_name() -> None:
    first, second = image_pixels(1), image_pixels(2)
    plain = predict({"instances": [first.tolist(), second.tolist()]})
    keyed = predict({"instances": [{"pixels": first.tolist()}, {"pixels": second.tolist()}]})
    for request in (plain, keyed):
        assert request.format is PredictFormat.ROW
        assert np.array_equal(request.pixels, np.stack([first, second]))


def test_row_format_of_b64_images_bare_and_keyed_by_the_input_name() -> None:
    bare = predict({"instances": [b64(PNG), b64(b"second")]})
    keyed = predict({"instances": [{"pixels": b64(PNG)}, {"pixels": b64(b"second")}]})
    for request in (bare, keyed):
        assert request.format is PredictFormat.ROW
        assert request.pixels is None
        assert request.images == [PNG, b"second"]
        assert request.count == 2


def test_columnar_format_with_the_docs_explicit_signature_name() -> None:
    # http_rest_api_handler_test.cc: {"signature_name": "serving_default", "inputs": [3.0, 4.0]}
    # (one unnamed input); here the one input holds pixel lists, then the same keyed by name.
    pixels = np.stack([image_pixels(3), image_pixels(4)])
    for inputs in (pixels.tolist(), {"pixels": pixels.tolist()}):
        request = predict({"signature_name": "serving_default", "inputs": inputs})
        assert request.format is PredictFormat.COLUMNAR
        assert np.array_equal(request.pixels, pixels)


def test_columnar_format_of_b64_images_keyed_by_name_ignores_other_named_inputs() -> None:
    # TF Serving's FillTensorMapFromInputsMap looks up the signature's inputs and ignores others.
    request = predict({"inputs": {"pixels": [b64(PNG)], "unused": [1, 2]}})
    assert request.format is PredictFormat.COLUMNAR
    assert request.images == [PNG]


def test_empty_signature_name_means_the_default_and_other_keys_are_ignored() -> None:
    request = predict({"signature_name": "", "instances": [b64(PNG)], "extra": True})
    assert request.images == [PNG]


def test_base64_with_whitespace_or_without_padding_is_read_as_absl_reads_it() -> None:
    text = base64.b64encode(b"ab").decode()  # "YWI="
    assert predict({"instances": [{"b64": text.rstrip("=")}]}).images == [b"ab"]
    assert predict({"instances": [{"b64": "YW\nI="}]}).images == [b"ab"]


def test_uint8_bounds_are_accepted() -> None:
    pixels = np.zeros(SHAPE, dtype=np.uint8)
    pixels[0, 0, 0], pixels[27, 27, 0] = 255, 0
    assert np.array_equal(predict({"instances": [pixels.tolist()]}).pixels[0], pixels)


def test_a_full_batch_of_pixel_lists_fits_the_json_limits() -> None:
    limits = json_limits(MAX_ITEMS, SHAPE)
    rows = [{"pixels": image_pixels(seed).tolist()} for seed in range(MAX_ITEMS)]
    body = json.dumps({"signature_name": "serving_default", "instances": rows}).encode()
    assert predict(parse_json(body, limits)).count == MAX_ITEMS
    columnar = json.dumps({"inputs": {"pixels": [row["pixels"] for row in rows]}}).encode()
    assert predict(parse_json(columnar, limits)).count == MAX_ITEMS


# --- :predict, refused --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "code", "words"),
    [
        ([1, 2], "invalid_body", "Is not object"),
        ({"signature_name": 100, "instances": [1]}, "invalid_signature_name", "must be a string"),
        (
            {"signature_name": "classify_objects", "instances": [1]},
            "unknown_signature",
            'Serving signature name: "classify_objects" not found in signature def',
        ),
        (
            {"instances": [b64(PNG)], "inputs": [b64(PNG)]},
            "ambiguous_format",
            "expecting only one of 'inputs' or 'instances'",
        ),
        ({"signature_name": "serving_default"}, "missing_inputs", "Missing 'inputs' or"),
        ({"instances": b64(PNG)}, "invalid_instances", "Expecting 'instances' to be an list"),
        ({"instances": []}, "no_instances", "No values in 'instances' array"),
        ({"inputs": []}, "no_instances", "No values in 'inputs'"),
        ({"inputs": {"pixels": []}}, "no_instances", "No values in 'inputs'"),
        ({"inputs": {"image": [b64(PNG)]}}, "missing_input", "Missing named input: pixels"),
        ({"inputs": b64(PNG)}, "wrong_shape", "'pixels'"),
        ({"inputs": 7}, "wrong_shape", "[28, 28, 1]"),
        ({"instances": [{"image": b64(PNG)}]}, "unknown_input", "must be equal to: pixels"),
        ({"instances": [{"pixels": [], "x": 1}]}, "unknown_input", "must be equal to: pixels"),
        ({"instances": [b64(PNG), image_pixels(0).tolist()]}, "mixed_inputs", "one kind"),
        ({"inputs": [image_pixels(0).tolist(), b64(PNG)]}, "mixed_inputs", "'pixels'"),
        ({"instances": [{"b64": "not base64!"}]}, "bad_base64", "Unable to base64 decode"),
        ({"instances": [{"b64": "QQ="}]}, "bad_base64", "Unable to base64 decode"),
        ({"instances": [{"b64": 12}]}, "bad_base64", "not formatted correctly for base64"),
        ({"instances": [{"b64": "QQ==", "x": 1}]}, "bad_base64", "not formatted correctly"),
        ({"inputs": {"pixels": [{"b64": ""}]}}, "empty_image", "is empty"),
    ],
    ids=lambda case: str(case)[:40],
)
def test_malformed_predict_bodies_are_refused_400(document: object, code: str, words: str) -> None:
    error = refused(predict, document)
    assert (error.code, error.problem) == (code, InputProblem.MALFORMED)
    assert words in error.message


def _with(index: tuple[int, int, int], value: object) -> list:
    pixels = image_pixels(5).tolist()
    pixels[index[0]][index[1]][index[2]] = value
    return pixels


@pytest.mark.parametrize(
    ("instance", "code", "words"),
    [
        (image_pixels(0)[:, :, 0].tolist(), "wrong_shape", "shape [28, 28]"),
        (image_pixels(0, (28, 28, 3)).tolist(), "wrong_shape", "shape [28, 28, 3]"),
        (image_pixels(0, (27, 28, 1)).tolist(), "wrong_shape", "[-1, 28, 28, 1]"),
        ([*image_pixels(0).tolist()[:-1], [[1]] * 27], "wrong_shape", "ragged"),
        (_with((3, 4, 0), [1, 2]), "wrong_datatype", "JSON array where an integer"),
        (12, "wrong_shape", "a JSON number, not a nested list"),
        ("pixels", "wrong_shape", "a JSON string"),
        (_with((1, 2, 0), 1.5), "wrong_datatype", "JSON number where an integer 0-255"),
        (_with((1, 2, 0), 1.0), "wrong_datatype", "uint8"),
        (_with((1, 2, 0), True), "wrong_datatype", "JSON boolean"),
        (_with((1, 2, 0), None), "wrong_datatype", "JSON null"),
        (_with((1, 2, 0), "7"), "wrong_datatype", "JSON string"),
        (_with((1, 2, 0), {"b64": "QQ=="}), "wrong_datatype", "JSON object"),
        (_with((1, 2, 0), 256), "value_out_of_range", "holds 256, outside uint8 (0-255)"),
        (_with((1, 2, 0), -1), "value_out_of_range", "holds -1"),
        (_with((1, 2, 0), 10**40), "value_out_of_range", "outside uint8"),
    ],
    ids=lambda case: str(case)[:30],
)
def test_pixel_instances_of_the_wrong_shape_type_or_range_are_refused_naming_the_input(
    instance: object, code: str, words: str
) -> None:
    for document in (
        {"instances": [image_pixels(9).tolist(), instance]},
        {"instances": [{"pixels": image_pixels(9).tolist()}, {"pixels": instance}]},
        {"inputs": [image_pixels(9).tolist(), instance]},
        {"inputs": {"pixels": [image_pixels(9).tolist(), instance]}},
    ):
        error = refused(predict, document)
        assert (error.code, error.problem) == (code, InputProblem.MALFORMED), document.keys()
        assert "input 'pixels'" in error.message
        assert "instance 1" in error.message
        assert words in error.message


@pytest.mark.parametrize(
    "document",
    [
        {"instances": [b64(PNG)] * (MAX_ITEMS + 1)},
        {"instances": [image_pixels(0).tolist()] * (MAX_ITEMS + 1)},
        {"inputs": {"pixels": [b64(PNG)] * (MAX_ITEMS + 1)}},
        {"inputs": [{"b64": "not base64!"}] * (MAX_ITEMS + 1)},
    ],
    ids=["row-b64", "row-pixels", "columnar-b64", "counted-before-decoding"],
)
def test_more_images_than_max_items_are_refused_413(document: object) -> None:
    error = refused(predict, document)
    assert (error.code, error.problem) == ("too_many_images", InputProblem.TOO_LARGE)
    assert f"the limit is {MAX_ITEMS}" in error.message


# --- :classify ----------------------------------------------------------------------------

DOCS_CLASSIFY = {  # api_rest.md, "Encoding binary values"
    "signature_name": "classify_objects",
    "examples": [
        {"image": {"b64": "aW1hZ2UgYnl0ZXM="}, "caption": "seaside"},
        {"image": {"b64": "YXdlc29tZSBpbWFnZSBieXRlcw=="}, "caption": "mountains"},
    ],
}


def test_the_docs_classify_request_reads_each_examples_image_feature() -> None:
    document = {key: value for key, value in DOCS_CLASSIFY.items() if key != "signature_name"}
    assert parse_classify(document, max_items=MAX_ITEMS) == [
        b"image bytes",
        b"awesome image bytes",
    ]


def test_the_docs_classify_request_names_a_signature_this_model_lacks() -> None:
    error = refused(parse_classify, DOCS_CLASSIFY, max_items=MAX_ITEMS)
    assert error.code == "unknown_signature"
    assert error.message == 'Serving signature name: "classify_objects" not found in signature def'


def test_classify_takes_the_single_binary_feature_whatever_its_name_or_a_list_of_one() -> None:
    document = {
        "signature_name": "serving_default",
        "context": {"caption": "shared"},
        "examples": [{"x": b64(b"one")}, {"pixels": [b64(b"two")]}, {"image_bytes": b64(b"3")}],
    }
    assert parse_classify(document, max_items=MAX_ITEMS) == [b"one", b"two", b"3"]


def test_classify_merges_context_features_into_each_example_the_examples_own_winning() -> None:
    document = {
        "context": {"image": b64(b"shared")},
        "examples": [{"caption": "a"}, {}, {"image": b64(b"own")}],
    }
    assert parse_classify(document, max_items=MAX_ITEMS) == [b"shared", b"shared", b"own"]


def test_classify_prefers_the_feature_named_image_then_pixels_among_several() -> None:
    examples = [
        {"thumbnail": b64(b"small"), "pixels": b64(b"px"), "image": b64(b"pic")},
        {"thumbnail": b64(b"small"), "pixels": b64(b"px"), "other": {"b64": 5}},
    ]
    assert parse_classify({"examples": examples}, max_items=MAX_ITEMS) == [b"pic", b"px"]


@pytest.mark.parametrize(
    ("document", "code", "words"),
    [
        ("examples", "invalid_body", "Is not object"),
        ({"signature_name": ["x"], "examples": []}, "invalid_signature_name", "string value"),
        ({"instances": [b64(PNG)]}, "missing_examples", "key 'examples' is expected"),
        ({"examples": b64(PNG)}, "invalid_examples", "Expecting 'examples' value to be"),
        ({"examples": []}, "no_instances", "No values in 'examples' value"),
        ({"examples": [{"image": b64(PNG)}, "x"]}, "invalid_example", "JSON string"),
        ({"context": [1], "examples": [{"image": b64(PNG)}]}, "invalid_context", "JSON array"),
        ({"examples": [{"caption": "no image"}]}, "missing_image", "example 0: no image"),
        ({"examples": [{"image": "aW1hZ2U="}]}, "missing_image", '{"image": {"b64"'),
        (
            {"examples": [{"a": b64(PNG), "b": b64(PNG)}]},
            "ambiguous_image_feature",
            "several binary features (a, b)",
        ),
        (
            {"examples": [{"image": [b64(PNG), b64(PNG)]}]},
            "too_many_values",
            "feature 'image' holds 2 values",
        ),
        ({"examples": [{"image": {"b64": "@@@"}}]}, "bad_base64", "example 0 feature 'image'"),
        ({"examples": [{"image": {"b64": 1}}]}, "bad_base64", "not formatted correctly"),
        ({"examples": [{"image": {"b64": ""}}]}, "empty_image", "is empty"),
    ],
    ids=lambda case: str(case)[:40],
)
def test_malformed_classify_bodies_are_refused_400(document: object, code: str, words: str) -> None:
    error = refused(parse_classify, document, max_items=MAX_ITEMS)
    assert (error.code, error.problem) == (code, InputProblem.MALFORMED)
    assert words in error.message


def test_more_examples_than_max_items_are_refused_413() -> None:
    error = refused(parse_classify, {"examples": [{"image": b64(PNG)}] * 5}, max_items=MAX_ITEMS)
    assert (error.code, error.problem) == ("too_many_images", InputProblem.TOO_LARGE)


# --- JSON bodies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "problem"),
    [
        (b"", "malformed_json", InputProblem.MALFORMED),
        (b"instances = [1, 2]", "malformed_json", InputProblem.MALFORMED),
        (b'{"instances": [' * 5 + b"[[[[1]]]]" + b"]" * 5 + b"}", "json_too_deep", None),
        (b'{"inputs": [' + b"0," * 20_000 + b"0]}", "json_too_large", InputProblem.TOO_LARGE),
        (b'{"instances": [' + b"{}," * 4 + b"{}]}", "too_many_images", InputProblem.TOO_LARGE),
    ],
    ids=["empty", "not-json", "too-deep", "too-many-values", "too-many-instances"],
)
def test_json_bodies_refused_while_scanned(
    body: bytes, code: str, problem: InputProblem | None
) -> None:
    error = refused(parse_json, body, json_limits(MAX_ITEMS, (2, 2, 1)))
    assert error.code == code
    assert error.problem is (problem or InputProblem.MALFORMED)


def test_json_limits_grow_with_the_batch_and_the_image_size() -> None:
    small, large = json_limits(1, (2, 2, 1)), json_limits(64, (224, 224, 3))
    assert small.max_instances == 1 and large.max_instances == 64
    assert large.max_values >= 64 * 224 * 224 * 3
    assert small.max_depth >= 6
