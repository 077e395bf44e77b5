"""Helpers for the OIP v2 request tests: bodies as `tritonclient` writes them, hand-made JSON
and binary bodies, and the refusals of the request parser."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.http._utils import _get_inference_request

from app.api.oip.request import InferRequest, parse_infer_request
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


def parse(body: bytes, json_length: int | None = None, **limits: int) -> InferRequest:
    return parse_infer_request(body, json_length, **{**LIMITS, **limits})


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


def uint8(data: Any, shape: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": "pixels", "datatype": "UINT8", "shape": shape or [2], "data": data, **extra}


def assert_refused(
    error: InvalidInput, code: str, *words: str, problem: InputProblem = InputProblem.MALFORMED
) -> None:
    assert error.code == code, error.message
    assert error.problem is problem
    for word in words:
        assert word in error.message
