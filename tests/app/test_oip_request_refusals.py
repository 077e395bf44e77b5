"""OIP v2 request refusals: every malformed, oversized or unsupported request body is refused
with an `InvalidInput` that names its tensor and keeps a stable code (no server, no model)."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from oip_helpers import (
    PIXELS,
    assert_refused,
    binary_request,
    json_request,
    parse,
    refused,
    triton_body,
    triton_input,
    uint8,
)

from app.core.errors import InputProblem


def test_json_data_whose_count_differs_from_the_shape_is_refused() -> None:
    error = refused(json_request(uint8([1, 2, 3], [2, 2])))
    assert_refused(error, "element_count_mismatch", "'pixels'", "3 elements", "needs 4")


def test_a_value_that_does_not_fit_uint8_is_refused_naming_the_tensor() -> None:
    assert_refused(refused(json_request(uint8([1, 300]))), "value_out_of_range", "'pixels'", "300")
    assert_refused(refused(json_request(uint8([-1, 3]))), "value_out_of_range", "-1", "UINT8")


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("UINT8", [1.5, 2]),
        ("UINT8", [True, 2]),
        ("INT32", ["1", 2]),
        ("FP32", [None, 1.0]),
        ("FP32", [False, 1.0]),
        ("BOOL", [1, 0]),
        ("BYTES", [1, "a"]),
    ],
)
def test_an_element_of_the_wrong_json_type_is_refused(datatype: str, data: list[Any]) -> None:
    body = json_request({"name": "x", "datatype": datatype, "shape": [2], "data": data})
    assert_refused(refused(body), "invalid_value", "input 'x'", datatype)


def test_float_values_beyond_their_datatype_or_not_finite_are_refused() -> None:
    for datatype, value, code in [
        ("FP32", 1e39, "value_out_of_range"),
        ("FP16", 70000.0, "value_out_of_range"),
        ("FP64", 10**400, "value_out_of_range"),
    ]:
        body = json_request({"name": "x", "datatype": datatype, "shape": [1], "data": [value]})
        assert_refused(refused(body), code, "input 'x'", datatype)
    nan = b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[NaN]}]}'
    assert_refused(refused(nan), "invalid_value", "input 'x'")


def test_an_unknown_datatype_is_refused_and_bf16_is_unsupported() -> None:
    error = refused(json_request({"name": "x", "datatype": "FLOAT32", "shape": [1], "data": [1]}))
    assert_refused(error, "unknown_datatype", "input 'x'", "FLOAT32", "FP32")
    error = refused(json_request({"name": "x", "datatype": "BF16", "shape": [1], "data": [1]}))
    assert_refused(error, "unsupported_datatype", "BF16", problem=InputProblem.UNSUPPORTED)


@pytest.mark.parametrize("body", [b"{", b"", b"\xff\xfe", b'{"inputs": [}'])
def test_a_body_that_is_not_json_is_refused(body: bytes) -> None:
    assert_refused(refused(body), "malformed_json")


def test_json_past_the_depth_or_value_limits_is_refused_before_it_is_built() -> None:
    deep = json_request(uint8([[[[[[1]]]]], 2]))
    assert_refused(refused(deep, max_json_depth=5), "json_too_deep")
    many = json_request(uint8(list(range(100)), [100]))
    assert_refused(
        refused(many, max_json_values=50), "json_too_large", problem=InputProblem.TOO_LARGE
    )


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ([], "JSON object"),
        ({"inputs": []}, "'inputs'"),
        ({"inputs": {}}, "'inputs'"),
        ({"inputs": [5]}, "inputs[0]"),
        ({"inputs": [{"datatype": "UINT8", "shape": [1], "data": [1]}]}, "'name'"),
        ({"id": 42, "inputs": [uint8([1, 2])]}, "'id'"),
        ({"parameters": [], "inputs": [uint8([1, 2])]}, "'parameters'"),
        ({"inputs": [uint8({"a": 1})]}, "'data'"),
        ({"inputs": [uint8([1, 2])], "outputs": {}}, "'outputs'"),
        ({"inputs": [uint8([1, 2])], "outputs": [{"parameters": {}}]}, "outputs[0]"),
    ],
)
def test_a_request_of_the_wrong_structure_is_refused(document: Any, words: str) -> None:
    assert_refused(refused(json.dumps(document).encode()), "malformed_request", words)


@pytest.mark.parametrize(
    ("shape", "shown"),
    [([-1, 2], "-1"), ([2**64], str(2**64)), ([2, "3"], "'3'"), ([1.5], "1.5"), ("2", "")],
)
def test_a_negative_huge_or_non_integer_dimension_is_refused(shape: Any, shown: str) -> None:
    error = refused(json_request({"name": "x", "datatype": "UINT8", "shape": shape, "data": []}))
    assert_refused(error, "invalid_shape", "input 'x'", shown)


def test_a_shape_past_the_element_limit_is_refused_before_any_data_is_read() -> None:
    huge = [2**62, 2**62, 2**62, 2**62]  # its product overflows 64 bits
    body, json_length = binary_request(
        [
            (
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": huge,
                    "parameters": {"binary_data_size": 4},
                },
                b"\0" * 4,
            )
        ]
    )
    error = refused(body, json_length)
    assert_refused(error, "too_many_elements", "input 'x'", problem=InputProblem.TOO_LARGE)


@pytest.mark.parametrize("datatype", ["UINT8", "FP32", "BYTES"])
@pytest.mark.parametrize(
    "shape", [[0, 2**63 - 1], [2**62, 0, 5], [0, 100_001]], ids=["huge", "middle", "past-limit"]
)
def test_an_empty_tensor_with_a_dimension_past_the_limit_is_refused(
    shape: list[int], datatype: str
) -> None:
    body = json_request({"name": "x", "datatype": datatype, "shape": shape, "data": []})
    error = refused(body)
    assert_refused(error, "too_many_elements", "input 'x'", problem=InputProblem.TOO_LARGE)


def test_a_shape_of_too_many_dimensions_is_refused() -> None:
    body = json_request({"name": "x", "datatype": "UINT8", "shape": [1] * 33, "data": [7]})
    assert_refused(refused(body), "invalid_shape", "33 dimensions")
    body = json_request({"name": "x", "datatype": "UINT8", "shape": [1] * 32, "data": [7]})
    assert parse(body).inputs[0].data.ndim == 32


def test_too_many_elements_in_all_inputs_together_are_refused() -> None:
    first = {"name": "a", "datatype": "UINT8", "shape": [60], "data": [0] * 60}
    second = {"name": "b", "datatype": "UINT8", "shape": [60], "data": [0] * 60}
    assert len(parse(json_request(first), max_elements=100).inputs) == 1
    error = refused(json_request(first, second), max_elements=100)
    assert_refused(error, "too_many_elements", "input 'b'", "100", problem=InputProblem.TOO_LARGE)


def test_tritonclient_pixels_past_the_element_limit_are_refused_with_413() -> None:
    body, json_length = triton_body([triton_input("pixels", PIXELS, "UINT8", True)])
    error = refused(body, json_length, max_elements=PIXELS.size - 1)
    assert_refused(error, "too_many_elements", "'pixels'", problem=InputProblem.TOO_LARGE)


def test_binary_data_cut_short_is_refused() -> None:
    body, json_length = triton_body([triton_input("pixels", PIXELS, "UINT8", True)])
    error = refused(body[:-1], json_length)
    assert_refused(error, "truncated_binary_data", "'pixels'", "1568")


def test_bytes_after_the_last_binary_tensor_are_refused() -> None:
    body, json_length = triton_body([triton_input("pixels", PIXELS, "UINT8", True)])
    assert_refused(refused(body + b"\0", json_length), "trailing_binary_data", "1 bytes")
    json_only, _ = triton_body([triton_input("pixels", PIXELS, "UINT8", False)])
    assert_refused(refused(json_only + b"xyz", len(json_only)), "trailing_binary_data")


def test_a_binary_size_that_does_not_match_the_shape_is_refused() -> None:
    tensor = {"name": "pixels", "datatype": "UINT16", "shape": [2], "parameters": {}}
    tensor["parameters"]["binary_data_size"] = 3
    error = refused(*binary_request([(tensor, b"abc")]))
    assert_refused(error, "binary_size_mismatch", "'pixels'", "3 bytes", "needs 4 bytes")


def bytes_input(chunk: bytes, count: int) -> tuple[bytes, int]:
    tensor = {
        "name": "images",
        "datatype": "BYTES",
        "shape": [count],
        "parameters": {"binary_data_size": len(chunk)},
    }
    return binary_request([(tensor, chunk)])


def test_a_bytes_length_prefix_past_its_binary_data_size_is_refused() -> None:
    overrun = struct.pack("<I", 10) + b"abc" + struct.pack("<I", 1) + b"z"
    assert_refused(refused(*bytes_input(overrun, 2)), "bytes_length_overrun", "'images'", "10")
    huge = struct.pack("<I", 2**32 - 1) + b"abc"
    assert_refused(refused(*bytes_input(huge, 1)), "bytes_length_overrun", "element 0")
    cut = struct.pack("<I", 1) + b"a" + b"\x01\x00"
    assert_refused(refused(*bytes_input(cut, 2)), "bytes_length_overrun", "element 1")


def test_bytes_elements_must_fill_their_binary_data_size_exactly() -> None:
    spare = struct.pack("<I", 1) + b"a" + b"extra"
    assert_refused(refused(*bytes_input(spare, 1)), "binary_size_mismatch", "'images'", "5 bytes")
    body, json_length = bytes_input(struct.pack("<I", 2) + b"ok", 1)
    assert parse(body, json_length).inputs[0].data == [b"ok"]


def test_a_bool_byte_other_than_0_or_1_is_refused() -> None:
    tensor = {
        "name": "flags",
        "datatype": "BOOL",
        "shape": [2],
        "parameters": {"binary_data_size": 2},
    }
    assert_refused(refused(*binary_request([(tensor, b"\x01\x02")])), "value_out_of_range", "flags")


def test_an_input_must_have_exactly_one_of_data_and_binary_data_size() -> None:
    both = uint8([1, 2], parameters={"binary_data_size": 2})
    body, json_length = binary_request([(both, b"\1\2")])
    assert_refused(refused(body, json_length), "ambiguous_input_data", "'pixels'")
    neither = {"name": "pixels", "datatype": "UINT8", "shape": [2]}
    assert_refused(refused(json_request(neither)), "missing_input_data", "'pixels'")


def test_binary_data_without_the_header_length_is_refused() -> None:
    body, json_length = triton_body([triton_input("pixels", PIXELS, "UINT8", True)])
    error = refused(body, None)
    # The whole body is then read as JSON, and the binary tail after it is not JSON.
    assert error.code == "malformed_json"
    header = body[:json_length]
    assert_refused(
        refused(header, None), "missing_header_length", "Inference-Header-Content-Length"
    )


def test_a_header_length_beyond_the_body_is_refused() -> None:
    body = json_request(uint8([1, 2]))
    assert_refused(refused(body, len(body) + 1), "invalid_header_length", str(len(body) + 1))
    assert_refused(refused(body, -1), "invalid_header_length")


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"parameters": {"binary_data_output": "yes"}}, "binary_data_output"),
        ({"outputs": [{"name": "p", "parameters": {"binary_data": 1}}]}, "output 'p'"),
        ({"outputs": [{"name": "p", "parameters": {"classification": -1}}]}, "classification"),
        ({"outputs": [{"name": "p", "parameters": {"classification": 2.5}}]}, "classification"),
        ({"outputs": [{"name": "p", "parameters": {"classification": True}}]}, "classification"),
    ],
)
def test_parameters_of_the_wrong_type_are_refused(document: dict[str, Any], words: str) -> None:
    body = json.dumps({"inputs": [uint8([1, 2])], **document}).encode()
    assert_refused(refused(body), "invalid_parameter", words)


def test_a_binary_data_size_that_is_not_a_byte_count_is_refused() -> None:
    for size in (-1, 1.5, "2", True):
        tensor = {
            "name": "x",
            "datatype": "UINT8",
            "shape": [1],
            "parameters": {"binary_data_size": size},
        }
        body, json_length = binary_request([(tensor, b"\1")])
        assert_refused(refused(body, json_length), "invalid_parameter", "input 'x'")


def test_shared_memory_is_unsupported_for_inputs_and_outputs() -> None:
    shm = {
        "name": "x",
        "datatype": "UINT8",
        "shape": [1],
        "parameters": {"shared_memory_region": "r"},
    }
    error = refused(json_request(shm))
    assert_refused(
        error, "shared_memory_unsupported", "input 'x'", problem=InputProblem.UNSUPPORTED
    )
    outputs = [{"name": "p", "parameters": {"shared_memory_region": "r"}}]
    error = refused(json_request(uint8([1, 2]), outputs=outputs))
    assert_refused(
        error, "shared_memory_unsupported", "output 'p'", problem=InputProblem.UNSUPPORTED
    )


def test_a_tensor_named_twice_is_refused() -> None:
    assert_refused(
        refused(json_request(uint8([1, 2]), uint8([3, 4]))), "duplicate_tensor_name", "'pixels'"
    )
    outputs = [{"name": "p"}, {"name": "p"}]
    assert_refused(
        refused(json_request(uint8([1, 2]), outputs=outputs)), "duplicate_tensor_name", "'p'"
    )


def test_a_lone_surrogate_in_a_json_bytes_element_is_refused() -> None:
    body = b'{"inputs":[{"name":"s","datatype":"BYTES","shape":[1],"data":["\\ud800"]}]}'
    assert_refused(refused(body), "invalid_value", "input 's'")
