"""OIP v2 responses against the published `tritonclient`: bodies the response encoder writes read
back through its `InferResult`; Triton's classification strings and the metadata tensor (no
server, no model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as triton

from app.api.oip.response import (
    OutputTensor,
    classification_strings,
    encode_infer_response,
    tensor_metadata,
)

# --- responses read by tritonclient ---------------------------------------------------------


PROBABILITIES = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], np.float32)


def read_back(body: bytes, json_length: int | None) -> triton.InferResult:
    return triton.InferResult.from_response_body(body, header_length=json_length)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_fp32_probabilities_read_back_exactly_through_tritonclient(binary: bool) -> None:
    output = OutputTensor("probabilities", "FP32", (2, 3), PROBABILITIES, binary)

    body, json_length = encode_infer_response("fashion", "3", "r-1", [output])

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
    output = OutputTensor("probabilities", "FP32", (2, 3), PROBABILITIES, False)
    body, _ = encode_infer_response("fashion", "3", None, [output])
    assert "id" not in json.loads(body)


def test_binary_and_json_outputs_mix_in_one_response() -> None:
    classes = classification_strings(PROBABILITIES, 2, ["a", "b", "c"])
    outputs = [
        OutputTensor("classes", "BYTES", classes.shape, classes, True),
        OutputTensor("probabilities", "FP32", (2, 3), PROBABILITIES, False),
        OutputTensor("more", "BYTES", classes.shape, classes, False),
    ]

    result = read_back(*encode_infer_response("m", "1", None, outputs))

    assert result.as_numpy("classes").tolist() == classes.tolist()
    np.testing.assert_array_equal(result.as_numpy("probabilities"), PROBABILITIES)
    # From JSON tritonclient gives str elements, from binary data bytes (as with Triton).
    assert result.as_numpy("more").tolist() == [
        [item.decode() for item in row] for row in classes.tolist()
    ]


def test_a_bytes_output_serialises_with_little_endian_length_prefixes() -> None:
    data = np.array([b"ab", b"", "é"], dtype=object)
    output = OutputTensor("s", "BYTES", (3,), data, True)

    body, json_length = encode_infer_response("m", "1", None, [output])

    assert json_length is not None
    assert body[json_length:] == b"\x02\x00\x00\x00ab\x00\x00\x00\x00\x02\x00\x00\x00\xc3\xa9"


def test_an_output_whose_shape_does_not_hold_its_data_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="does not hold"):
        OutputTensor("p", "FP32", (3, 3), PROBABILITIES, True)


# --- classification -------------------------------------------------------------------------


def test_classification_strings_use_triton_format_best_first() -> None:
    labels = ["T-shirt/top", "Trouser", "Ankle boot"]
    scores = np.array([[0.0012, 0.000215, 0.998573]], np.float32)

    classes = classification_strings(scores, 2, labels)

    assert classes.shape == (1, 2)
    assert classes.tolist() == [[b"0.998573:2:Ankle boot", b"0.001200:0:T-shirt/top"]]


def test_classification_matches_the_example_of_triton_extension_doc() -> None:
    # extension_classification.md: [1.1, 3.3, 0.5, 2.4], count 2 -> "3.3:1", "2.4:3"; the
    # server prints the value with std::to_string, i.e. six decimals.
    scores = np.array([[1.1, 3.3, 0.5, 2.4]], np.float32)
    assert classification_strings(scores, 2, []).tolist() == [[b"3.300000:1", b"2.400000:3"]]


def test_classification_ties_go_to_the_lower_index_and_k_is_clamped_to_the_classes() -> None:
    scores = np.array([[0.25, 0.5, 0.25], [0.0, 0.0, 0.0]], np.float32)

    classes = classification_strings(scores, 5, ["a", "b"])

    assert classes.tolist() == [
        [b"0.500000:1:b", b"0.250000:0:a", b"0.250000:2"],
        [b"0.000000:0:a", b"0.000000:1:b", b"0.000000:2"],
    ]


def test_classification_of_an_empty_batch_and_a_bad_count() -> None:
    assert classification_strings(np.zeros((0, 4), np.float32), 2, []).shape == (0, 2)
    with pytest.raises(ValueError):
        classification_strings(PROBABILITIES, 0, [])


def test_tensor_metadata_is_the_spec_metadata_tensor() -> None:
    assert tensor_metadata("pixels", "UINT8", (-1, 28, 28, 1)) == {
        "name": "pixels",
        "datatype": "UINT8",
        "shape": [-1, 28, 28, 1],
    }
