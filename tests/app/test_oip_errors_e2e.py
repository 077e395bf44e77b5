"""OIP v2 failures answer `{"error": "<message>"}` with the status the core's error maps to:
what `tritonclient` raises, and raw bodies it would never send."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from app_helpers import Evaluated, Server, encode, make_settings, run_server
from prometheus_client import CollectorRegistry
from tritonclient.utils import InferenceServerException

from app.config import Settings
from app.main import create_app
from model_store.signature import INPUT_NAME, OUTPUT_NAME

MODEL = "fashion"
INFER = f"/v2/models/{MODEL}/infer"
HEADER_LENGTH = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def triton_client(server: Server) -> Iterator[triton.InferenceServerClient]:
    http = triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=60)
    yield http
    http.close()


def tensor(array: np.ndarray, datatype: str, name: str = INPUT_NAME) -> triton.InferInput:
    data = triton.InferInput(name, list(array.shape), datatype)
    data.set_data_from_numpy(array)
    return data


def refusal(call: object, *args: object, **kwargs: object) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


PIXELS = np.zeros((2, 28, 28, 1), np.uint8)


def test_an_unknown_model_or_version_is_404(triton_client: triton.InferenceServerClient) -> None:
    error = refusal(triton_client.infer, "shoes", [tensor(PIXELS, "UINT8")])
    assert error.status() == "404"
    assert "'shoes' is not served here" in error.message()
    error = refusal(triton_client.infer, MODEL, [tensor(PIXELS, "UINT8")], model_version="999")
    assert error.status() == "404"
    assert "999" in error.message()
    error = refusal(triton_client.get_model_metadata, MODEL, "999")
    assert error.status() == "404"
    error = refusal(triton_client.infer, MODEL, [tensor(PIXELS, "UINT8")], model_version="v1")
    assert error.status() == "404"
    assert "invalid version 'v1'" in error.message()


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ([tensor(PIXELS.astype(np.float32), "FP32")], "expected datatype UINT8"),
        ([tensor(PIXELS[..., 0], "UINT8")], "expected shape [-1, 28, 28, 1], got [2, 28, 28]"),
        ([tensor(np.zeros((2, 14, 14, 1), np.uint8), "UINT8")], "got [2, 14, 14, 1]"),
        ([tensor(PIXELS, "UINT8", "image")], "expected one input 'pixels'"),
        ([tensor(PIXELS, "UINT8"), tensor(PIXELS, "UINT8", "x")], "expected one input"),
        ([tensor(np.zeros((0, 28, 28, 1), np.uint8), "UINT8")], "holds no image"),
        ([tensor(np.array([b""], dtype=object), "BYTES")], "empty"),
        ([tensor(np.array([b"not an image"], dtype=object), "BYTES")], "not a supported image"),
        ([tensor(np.array([[encode(PIXELS[0, ..., 0])]], dtype=object), "BYTES")], "shape [N]"),
    ],
    ids=[
        "fp32",
        "rank",
        "size",
        "name",
        "two-inputs",
        "no-image",
        "empty-bytes",
        "not-an-image",
        "bytes-rank",
    ],
)
def test_a_wrong_tensor_is_refused_naming_it(
    triton_client: triton.InferenceServerClient, inputs: list[triton.InferInput], words: str
) -> None:
    error = refusal(triton_client.infer, MODEL, inputs)
    assert error.status() in ("400", "415"), error.message()
    assert words in error.message()


def test_an_unknown_output_is_refused(triton_client: triton.InferenceServerClient) -> None:
    outputs = [triton.InferRequestedOutput("logits")]
    error = refusal(triton_client.infer, MODEL, [tensor(PIXELS, "UINT8")], outputs=outputs)
    assert error.status() == "400"
    assert "unknown output 'logits'" in error.message()


def test_too_many_images_are_413(triton_client: triton.InferenceServerClient) -> None:
    # The shared server takes at most 4 images per request.
    five = np.zeros((5, 28, 28, 1), np.uint8)
    error = refusal(triton_client.infer, MODEL, [tensor(five, "UINT8")])
    assert error.status() == "413"
    assert "3136 elements" in error.message()
    files = np.array([encode(PIXELS[0, ..., 0])] * 5, dtype=object)
    error = refusal(triton_client.infer, MODEL, [tensor(files, "BYTES")])
    assert error.status() == "413"
    assert "5 images" in error.message()


@pytest.mark.asyncio(loop_scope="session")
async def test_raw_bodies_tritonclient_would_never_send(client: httpx.AsyncClient) -> None:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": INPUT_NAME,
                    "datatype": "UINT8",
                    "shape": [1, 28, 28, 1],
                    "parameters": {"binary_data_size": 784},
                }
            ]
        }
    ).encode()
    cases = [
        (b"{", {}, 400, "not valid JSON"),
        (b"[]", {}, 400, "JSON object"),
        (header + b"\0" * 783, {HEADER_LENGTH: str(len(header))}, 400, "binary"),
        (header + b"\0" * 785, {HEADER_LENGTH: str(len(header))}, 400, "1 bytes"),
        (header + b"\0" * 784, {HEADER_LENGTH: "many"}, 400, HEADER_LENGTH),
        (header + b"\0" * 784, {HEADER_LENGTH: "99999"}, 400, HEADER_LENGTH),
        (header + b"\0" * 784, {}, 400, "not valid JSON"),
        (b"\x1f\x8b junk", {"content-encoding": "gzip"}, 400, "gzip"),
        (gzip.compress(b"{}"), {"content-encoding": "br"}, 415, "'br'"),
    ]
    for body, headers, status, words in cases:
        response = await client.post(INFER, content=body, headers=headers)
        assert response.status_code == status, (body[:40], response.text)
        error = response.json()["error"]
        assert isinstance(error, str)
        assert words in error, (body[:40], error)


@pytest.mark.asyncio(loop_scope="session")
async def test_json_values_past_the_type_are_refused_naming_the_tensor(
    client: httpx.AsyncClient,
) -> None:
    data = [[[[0]] * 28] * 28]
    data[0][0][0] = [300]
    body = {"inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [1, 28, 28, 1]}]}
    body["inputs"][0]["data"] = data
    response = await client.post(INFER, json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": "input 'pixels': 300 does not fit UINT8 (0 to 255)",
    }


@pytest.mark.asyncio(loop_scope="session")
async def test_other_paths_under_v2_answer_in_the_oip_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/repository/index")
    assert response.status_code == 404
    assert isinstance(response.json()["error"], str)
    response = await client.get(INFER)
    assert response.status_code == 405
    assert isinstance(response.json()["error"], str)
    response = await client.get("/v2/models/Shoes")
    assert response.status_code == 404
    assert "invalid model 'Shoes'" in response.json()["error"]


@pytest.mark.asyncio(loop_scope="session")
async def test_an_overloaded_server_answers_503_with_retry_after(
    shared_root: Path, evaluated: Evaluated
) -> None:
    settings = make_settings(
        shared_root,
        max_batch_size=2,
        max_queue=4,
        max_images_per_request=4,
        max_in_flight_requests=1,
        retry_after_s=2,
    )
    body = {
        "inputs": [
            {
                "name": INPUT_NAME,
                "datatype": "UINT8",
                "shape": [1, 28, 28, 1],
                "data": evaluated.images[0].reshape(-1).tolist(),
            }
        ]
    }
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            server.gate.hold()
            held = asyncio.ensure_future(http.post(INFER, json=body))
            await server.until(server.gate.entered.is_set)
            refused = await http.post(INFER, json=body)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "2"
            assert refused.json() == {"error": "1 requests are already in progress; retry shortly"}
            server.gate.release()
            answered = await held
            assert answered.status_code == 200, answered.text
            assert answered.json()["outputs"][0]["name"] == OUTPUT_NAME
            label = {"route": "/v2/models/{model}/infer", "method": "POST", "status": "503"}
            assert server.metric("tagger_requests_total", **label) == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_with_an_api_key_inference_needs_it_and_health_does_not(tmp_path: Path) -> None:
    settings = Settings(model_store=tmp_path, poll_interval_s=0, api_key="s3cret")
    app = create_app(settings, registry=CollectorRegistry())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for method, path in [("POST", INFER), ("GET", "/v2"), ("GET", f"/v2/models/{MODEL}")]:
            response = await http.request(method, path, content=b"{}")
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json() == {
                "error": "missing API key; send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            }
        assert (await http.get("/v2/health/live")).status_code == 200
        not_ready = await http.get("/v2/health/ready")  # exempt: no model here, not no key
        assert not_ready.status_code == 503
        assert not_ready.json() == {"error": "the model is still loading"}
        keyed = await http.get("/v2", headers={"authorization": "Bearer s3cret"})
        assert keyed.status_code == 200
        schema = (await http.get("/openapi.json", headers={"x-api-key": "s3cret"})).json()
    # /docs shows the OIP routes with their own error body, 401 included.
    operation = schema["paths"]["/v2/models/{model}/infer"]["post"]
    oip_error = {"$ref": "#/components/schemas/OipError"}
    for status in ("400", "401", "404", "413", "503"):
        assert operation["responses"][status]["content"]["application/json"]["schema"] == oip_error
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["inputs"]["items"]["properties"]["name"]["enum"] == [INPUT_NAME]
    assert "401" not in schema["paths"]["/v2/health/live"]["get"]["responses"]
