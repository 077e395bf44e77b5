"""OIP v2 requests against the published `tritonclient`: bodies its request builder writes parse
to the same tensors, and the header length header reads as a byte count (no server, no model)."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton
from oip_helpers import PIXELS, json_request, parse, refused, triton_body, triton_input

from app.api.oip.request import parse_header_length
from app.core.errors import InvalidInput

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


def test_the_header_length_header_is_a_byte_count() -> None:
    assert parse_header_length(None) is None
    assert parse_header_length("208") == 208
    for bad in ("-1", "1e3", "", "12 3", "٣", "9" * 30):
        with pytest.raises(InvalidInput) as caught:
            parse_header_length(bad)
        assert caught.value.code == "invalid_header_length"


# --- integers as JSON Schema counts them; refusal order (found by Schemathesis) ------------------


def test_integral_floats_are_integers_in_shapes_counts_and_uint8_data() -> None:
    """JSON Schema's `integer` holds 3.0: a schema-valid request is not refused for it."""
    body = json_request(
        {
            "name": "pixels",
            "datatype": "UINT8",
            "shape": [1.0, 2, 2.0, 1],
            "data": [0, 1.0, 2, 255.0],
        },
        outputs=[{"name": "probabilities", "parameters": {"classification": 3.0}}],
    )
    request = parse(body)
    (tensor,) = request.inputs
    assert tensor.shape == (1, 2, 2, 1) and all(type(d) is int for d in tensor.shape)
    np.testing.assert_array_equal(tensor.data.ravel(), [0, 1, 2, 255])
    assert request.outputs[0].classification == 3


@pytest.mark.parametrize("value", [2.5, True, "3"])
def test_a_classification_that_is_not_an_integer_is_refused(value: object) -> None:
    body = json_request(
        {"name": "pixels", "datatype": "UINT8", "shape": [1], "data": [0]},
        outputs=[{"name": "probabilities", "parameters": {"classification": value}}],
    )
    assert refused(body).code == "invalid_parameter"


def test_a_malformed_output_is_refused_before_an_oversized_input_is_sized() -> None:
    body = json_request(
        {"name": "pixels", "datatype": "BYTES", "shape": [53463, 210], "data": []},
        outputs=[{"parameters": {}}],
    )
    error = refused(body)
    assert error.code == "malformed_request" and "'name'" in str(error)


@pytest.mark.parametrize(
    ("name", "datatype", "code"),
    [("__not_in_enum__", "UINT8", "unknown_input"), ("pixels", "FP32", "invalid_datatype")],
)
def test_an_input_the_model_lacks_is_refused_before_its_shape_is_sized(
    name: str, datatype: str, code: str
) -> None:
    body = json_request({"name": name, "datatype": datatype, "shape": [53463, 210], "data": []})
    assert refused(body, expected={"pixels": ("UINT8", "BYTES")}).code == code
    assert refused(body).code == "too_many_elements"  # the generic parse sizes it first
