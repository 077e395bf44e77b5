"""The OIP v2 codec against the published `tritonclient`: bodies its request builder writes parse
to the same tensors, and bodies the codec writes read back through its `InferResult`; every
refusal names its tensor and keeps a stable code (no server, no model)."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.http._utils import _get_inference_request

from app.api.oip import codec
from app.core.errors import InputProblem, InvalidInput

LIMITS = {"max_elements": 100_000, "max_json_values": 200_000, "max_json_depth": 16}


def triton_body(
    inputs: list[triton.InferInput],
    outputs: list[triton.InferRequestedOutput] | None = None,
    request_id: str = "",
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """The body and Inference-Header-Content-Length that `InferenceServerClient.infer` sends."""
    return _get_inference_request(
        inputs=inputs,
        request_id=request_id,
        outputs=outputs,
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=0,
        timeout=None,
        custom_parameters=parameters,
    )


def triton_input(name: str, array: np.ndarray, datatype: str, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def parse(body: bytes, json_length: int | None = None, **limits: int) -> codec.InferRequest:
    return codec.parse_infer_request(body, json_length, **{**LIMITS, **limits})


def json_request(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


def binary_request(tensors: list[tuple[dict[str, Any], bytes]], **extra: Any) -> tuple[bytes, int]:
    header = json.dumps({"inputs": [tensor for tensor, _ in tensors], **extra}).encode()
    return header + b"".join(chunk for _, chunk in tensors), len(header)


def refused(body: bytes, json_length: int | None = None, **limits: int) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(body, json_length, **limits)
    return caught.value


PIXELS = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28, 1)


# --- requests written by tritonclient -------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_uint8_pixel_batch_from_tritonclient_parses_to_the_same_array(binary: bool) -> None:
    body, json_length = triton_body([triton_input("pixels", PIXELS, "UINT8", binary)])
    assert (json_length is not None) == binary

    request = parse(body, json_length)

    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("pixels", "UINT8", (2, 28, 28, 1))
    assert isinstance(tensor.data, np.ndarray)
    assert tensor.data.dtype == np.uint8
    np.testing.assert_array_equal(tensor.data, PIXELS)
    assert tensor.parameters == ({"binary_data_size": PIXELS.size} if binary else {})


NUMERIC = [
    ("BOOL", np.array([[True, False, True]])),
    ("UINT16", np.array([0, 65535], np.uint16)),
    ("UINT64", np.array([0, 2**64 - 1], np.uint64)),
    ("INT8", np.array([-128, 127], np.int8)),
    ("INT32", np.array([[-(2**31), 7], [2**31 - 1, 0]], np.int32)),
    ("INT64", np.array([-(2**63), 2**63 - 1], np.int64)),
    ("FP16", np.array([0.5, -2.0], np.float16)),
    ("FP32", np.array([[0.1, 1e-30, -3.4e38]], np.float32)),
    ("FP64", np.array([np.pi, -1e300])),
]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize(("datatype", "array"), NUMERIC, ids=[d for d, _ in NUMERIC])
def test_every_numeric_datatype_round_trips_from_tritonclient(
    datatype: str, array: np.ndarray, binary: bool
) -> None:
    body, json_length = triton_body([triton_input("x", array, datatype, binary)])

    (tensor,) = parse(body, json_length).inputs

    assert tensor.datatype == datatype
    assert isinstance(tensor.data, np.ndarray)
    assert tensor.data.dtype == array.dtype
    np.testing.assert_array_equal(tensor.data, array)


def test_bytes_elements_from_tritonclient_binary_keep_every_byte() -> None:
    files = np.array([b"\x89PNG\r\n\x1a\n\x00\x00", b"", b"\xff\xd8\xff" * 100], dtype=object)
    body, json_length = triton_body([triton_input("images", files, "BYTES", True)])

    (tensor,) = parse(body, json_length).inputs

    assert tensor.shape == (3,)
    assert tensor.data == list(files)


def test_bytes_elements_from_tritonclient_json_are_their_utf8() -> None:
    texts = np.array([["héllo", "x"], ["", "✓"]], dtype=object)
    body, json_length = triton_body([triton_input("texts", texts, "BYTES", False)])
    assert json_length is None

    (tensor,) = parse(body, json_length).inputs

    assert tensor.shape == (2, 2)
    assert tensor.data == ["héllo".encode(), b"x", b"", "✓".encode()]


def test_binary_sections_follow_the_order_of_the_inputs_that_have_them() -> None:
    first = np.array([1, 2, 3], np.int32)
    images = np.array([b"abc", b"de"], dtype=object)
    body, json_length = triton_body(
        [
            triton_input("first", first, "INT32", True),
            triton_input("middle", np.array([9.5], np.float32), "FP32", False),
            triton_input("images", images, "BYTES", True),
        ]
    )

    request = parse(body, json_length)

    assert [tensor.name for tensor in request.inputs] == ["first", "middle", "images"]
    np.testing.assert_array_equal(request.inputs[0].data, first)
    np.testing.assert_array_equal(request.inputs[1].data, [9.5])
    assert request.inputs[2].data == [b"abc", b"de"]


def test_the_request_id_is_kept_and_absent_when_tritonclient_sends_none() -> None:
    tensor = triton_input("pixels", PIXELS, "UINT8", True)
    assert parse(*triton_body([tensor], request_id="req-7")).id == "req-7"
    assert parse(*triton_body([tensor])).id is None


def test_requested_outputs_carry_binary_data_and_classification() -> None:
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=False, class_count=3),
        triton.InferRequestedOutput("raw"),
    ]
    request = parse(*triton_body([triton_input("p", PIXELS, "UINT8", True)], outputs))

    first, second = request.outputs
    assert (first.name, first.binary_data, first.classification) == ("probabilities", False, 3)
    assert (second.name, second.binary_data, second.classification) == ("raw", True, None)
    assert request.binary_data_output is False
    assert [request.wants_binary(output) for output in request.outputs] == [False, True]


def test_without_outputs_tritonclient_asks_for_every_output_in_binary() -> None:
    request = parse(*triton_body([triton_input("p", PIXELS, "UINT8", True)]))

    assert request.outputs == []
    assert request.binary_data_output is True
    assert request.parameters == {"binary_data_output": True}
    assert request.wants_binary(None) is True


def test_binary_data_on_an_output_overrides_binary_data_output() -> None:
    body = json_request(
        {"name": "x", "datatype": "UINT8", "shape": [1], "data": [1]},
        parameters={"binary_data_output": True},
        outputs=[{"name": "a", "parameters": {"binary_data": False}}, {"name": "b"}],
    )
    request = parse(body)

    assert [request.wants_binary(output) for output in request.outputs] == [False, True]
    assert (
        parse(
            json_request({"name": "x", "datatype": "UINT8", "shape": [1], "data": [1]})
        ).wants_binary(None)
        is False
    )


def test_custom_parameters_and_unknown_fields_are_kept_or_ignored() -> None:
    tensor = triton_input("p", PIXELS, "UINT8", True)
    request = parse(*triton_body([tensor], parameters={"tenant": "a"}))
    assert request.parameters == {"binary_data_output": True, "tenant": "a"}
    # Triton's own binary-data example carries a top-level "model_name".
    body = json_request(
        {"name": "x", "datatype": "UINT32", "shape": [2], "data": [1, 2]}, model_name="m"
    )
    assert parse(body).inputs[0].data.tolist() == [1, 2]


def test_json_data_may_be_nested_in_its_natural_shape() -> None:
    body = json_request(
        {"name": "m", "datatype": "INT32", "shape": [2, 2], "data": [[1, 2], [4, 5]]}
    )
    np.testing.assert_array_equal(parse(body).inputs[0].data, [[1, 2], [4, 5]])


def test_an_empty_tensor_parses_to_an_empty_array() -> None:
    body = json_request({"name": "x", "datatype": "UINT8", "shape": [0, 28, 28, 1], "data": []})
    assert parse(body).inputs[0].data.shape == (0, 28, 28, 1)


def test_an_integral_float_is_accepted_for_float_datatypes() -> None:
    body = json_request({"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 0.5]})
    np.testing.assert_array_equal(parse(body).inputs[0].data, np.array([1, 0.5], np.float32))


# --- responses read by tritonclient ---------------------------------------------------------


PROBABILITIES = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], np.float32)


def read_back(body: bytes, json_length: int | None) -> triton.InferResult:
    return triton.InferResult.from_response_body(body, header_length=json_length)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_fp32_probabilities_read_back_exactly_through_tritonclient(binary: bool) -> None:
    output = codec.OutputTensor("probabilities", "FP32", (2, 3), PROBABILITIES, binary)

    body, json_length = codec.encode_infer_response("fashion", "3", "r-1", [output])

    result = read_back(body, json_length)
    array = result.as_numpy("probabilities")
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, PROBABILITIES)
    response = result.get_response()
    assert (response["id"], response["model_name"], response["model_version"]) == (
        "r-1",
        "fashion",
        "3",
    )
    if binary:
        assert json_length is not None
        assert response["outputs"][0]["parameters"] == {"binary_data_size": 24}
        assert body[json_length:] == PROBABILITIES.astype("<f4").tobytes()
    else:
        assert json_length is None
        assert json.loads(body)["outputs"][0]["data"] == PROBABILITIES.reshape(-1).tolist()


def test_a_response_without_a_request_id_has_no_id_field() -> None:
    output = codec.OutputTensor("probabilities", "FP32", (2, 3), PROBABILITIES, False)
    body, _ = codec.encode_infer_response("fashion", "3", None, [output])
    assert "id" not in json.loads(body)


def test_binary_and_json_outputs_mix_in_one_response() -> None:
    classes = codec.classification_strings(PROBABILITIES, 2, ["a", "b", "c"])
    outputs = [
        codec.OutputTensor("classes", "BYTES", classes.shape, classes, True),
        codec.OutputTensor("probabilities", "FP32", (2, 3), PROBABILITIES, False),
        codec.OutputTensor("more", "BYTES", classes.shape, classes, False),
    ]

    result = read_back(*codec.encode_infer_response("m", "1", None, outputs))

    assert result.as_numpy("classes").tolist() == classes.tolist()
    np.testing.assert_array_equal(result.as_numpy("probabilities"), PROBABILITIES)
    # From JSON tritonclient gives str elements, from binary data bytes (as with Triton).
    assert result.as_numpy("more").tolist() == [
        [item.decode() for item in row] for row in classes.tolist()
    ]


def test_a_bytes_output_serialises_with_little_endian_length_prefixes() -> None:
    data = np.array([b"ab", b"", "é"], dtype=object)
    output = codec.OutputTensor("s", "BYTES", (3,), data, True)

    body, json_length = codec.encode_infer_response("m", "1", None, [output])

    assert json_length is not None
    assert body[json_length:] == b"\x02\x00\x00\x00ab\x00\x00\x00\x00\x02\x00\x00\x00\xc3\xa9"


def test_an_output_whose_shape_does_not_hold_its_data_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="does not hold"):
        codec.OutputTensor("p", "FP32", (3, 3), PROBABILITIES, True)


# --- classification -------------------------------------------------------------------------


def test_classification_strings_use_triton_format_best_first() -> None:
    labels = ["T-shirt/top", "Trouser", "Ankle boot"]
    scores = np.array([[0.0012, 0.000215, 0.998573]], np.float32)

    classes = codec.classification_strings(scores, 2, labels)

    assert classes.shape == (1, 2)
    assert classes.tolist() == [[b"0.998573:2:Ankle boot", b"0.001200:0:T-shirt/top"]]


def test_classification_matches_the_example_of_triton_extension_doc() -> None:
    # extension_classification.md: [1.1, 3.3, 0.5, 2.4], count 2 -> "3.3:1", "2.4:3"; the
    # server prints the value with std::to_string, i.e. six decimals.
    scores = np.array([[1.1, 3.3, 0.5, 2.4]], np.float32)
    assert codec.classification_strings(scores, 2, []).tolist() == [[b"3.300000:1", b"2.400000:3"]]


def test_classification_ties_go_to_the_lower_index_and_k_is_clamped_to_the_classes() -> None:
    scores = np.array([[0.25, 0.5, 0.25], [0.0, 0.0, 0.0]], np.float32)

    classes = codec.classification_strings(scores, 5, ["a", "b"])

    assert classes.tolist() == [
        [b"0.500000:1:b", b"0.250000:0:a", b"0.250000:2"],
        [b"0.000000:0:a", b"0.000000:1:b", b"0.000000:2"],
    ]


def test_classification_of_an_empty_batch_and_a_bad_count() -> None:
    assert codec.classification_strings(np.zeros((0, 4), np.float32), 2, []).shape == (0, 2)
    with pytest.raises(ValueError):
        codec.classification_strings(PROBABILITIES, 0, [])


def test_tensor_metadata_is_the_spec_metadata_tensor() -> None:
    assert codec.tensor_metadata("pixels", "UINT8", (-1, 28, 28, 1)) == {
        "name": "pixels",
        "datatype": "UINT8",
        "shape": [-1, 28, 28, 1],
    }


def test_the_header_length_header_is_a_byte_count() -> None:
    assert codec.parse_header_length(None) is None
    assert codec.parse_header_length("208") == 208
    for bad in ("-1", "1e3", "", "12 3", "٣", "9" * 30):
        with pytest.raises(InvalidInput) as caught:
            codec.parse_header_length(bad)
        assert caught.value.code == "invalid_header_length"


# --- refusals -------------------------------------------------------------------------------


def uint8(data: Any, shape: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": "pixels", "datatype": "UINT8", "shape": shape or [2], "data": data, **extra}


def assert_refused(
    error: InvalidInput, code: str, *words: str, problem: InputProblem = InputProblem.MALFORMED
) -> None:
    assert error.code == code, error.message
    assert error.problem is problem
    for word in words:
        assert word in error.message


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
    [([-1, 2], "-1"), ([2**64], str(2**64)), ([2, "3"], "'3'"), ([1.0], "1.0"), ("2", "")],
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
