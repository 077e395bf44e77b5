"""TF Serving's REST API over real uvicorn with the real model: bodies shaped as in TF Serving's
REST documentation, answers asserted field by field and equal to this service's own API."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import numpy as np
import pytest
from app_helpers import Evaluated, Server, encode, make_settings, run_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

MODEL = "/v1/models/fashion"
CHOSEN = [3, 0, 7, 1]


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def pixels_of(evaluated: Evaluated, index: int) -> list:
    """A t10k image as the model's input, [28][28][1] integers."""
    return evaluated.images[index][:, :, None].tolist()


async def own_api_probabilities(
    client: httpx.AsyncClient, evaluated: Evaluated, labels: list[str]
) -> np.ndarray:
    """What this service's own /classify answers for the CHOSEN images, in label order."""
    files = [("file", (f"{i}.png", encode(evaluated.images[i]), "image/png")) for i in CHOSEN]
    response = await client.post(f"{MODEL}/classify", params={"top_k": len(labels)}, files=files)
    assert response.status_code == 200, response.text
    rows = np.zeros((len(CHOSEN), len(labels)))
    for row, result in zip(rows, response.json()["results"], strict=True):
        for prediction in result["predictions"]:
            row[labels.index(prediction["label"])] = prediction["confidence"]
    return rows


@pytest.fixture
async def expected(client: httpx.AsyncClient, evaluated: Evaluated, trained_store) -> np.ndarray:
    return await own_api_probabilities(client, evaluated, trained_store.metadata.labels)


# --- :predict ---------------------------------------------------------------------------


async def test_predict_row_format_b64_images_equal_the_own_api(
    client: httpx.AsyncClient, evaluated: Evaluated, expected: np.ndarray
) -> None:
    instances = [b64(encode(evaluated.images[i])) for i in CHOSEN]
    response = await client.post(f"{MODEL}:predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["predictions"]
    np.testing.assert_allclose(body["predictions"], expected, atol=1e-6)


async def test_predict_row_format_pixel_lists_keyed_by_input_name_without_content_type(
    client: httpx.AsyncClient, evaluated: Evaluated, expected: np.ndarray
) -> None:
    # The docs' curl examples send `-d '{...}'`: form-encoded Content-Type, a JSON body.
    instances = [{"pixels": pixels_of(evaluated, i)} for i in CHOSEN]
    response = await client.post(
        f"{MODEL}:predict",
        content=json.dumps({"signature_name": "serving_default", "instances": instances}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["predictions"], expected, atol=1e-6)


async def test_predict_columnar_format_answers_outputs(
    client: httpx.AsyncClient, evaluated: Evaluated, expected: np.ndarray
) -> None:
    pixels = [pixels_of(evaluated, i) for i in CHOSEN]
    images = [b64(encode(evaluated.images[i])) for i in CHOSEN]
    for inputs in (pixels, {"pixels": pixels}, {"pixels": images}):
        response = await client.post(f"{MODEL}:predict", json={"inputs": inputs})
        assert response.status_code == 200, response.text
        body = response.json()
        assert list(body) == ["outputs"]
        np.testing.assert_allclose(body["outputs"], expected, atol=1e-6)


async def test_predict_matches_the_evaluated_probabilities(
    client: httpx.AsyncClient, evaluated: Evaluated
) -> None:
    chosen = list(range(8, 12))
    instances = [pixels_of(evaluated, i) for i in chosen]
    response = await client.post(f"{MODEL}:predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        response.json()["predictions"], evaluated.probabilities[chosen], atol=1e-5
    )


async def test_predict_and_classify_by_version_and_by_label(
    client: httpx.AsyncClient, server: Server, evaluated: Evaluated, expected: np.ndarray
) -> None:
    version = server.manager.served.version
    server.store.promote("fashion", version, "stable")
    instances = [pixels_of(evaluated, i) for i in CHOSEN]
    for path in (f"{MODEL}/versions/{version}", f"{MODEL}/labels/stable"):
        response = await client.post(f"{path}:predict", json={"instances": instances})
        assert response.status_code == 200, (path, response.text)
        np.testing.assert_allclose(response.json()["predictions"], expected, atol=1e-6)
        examples = [{"image": b64(encode(evaluated.images[i]))} for i in CHOSEN]
        response = await client.post(f"{path}:classify", json={"examples": examples})
        assert response.status_code == 200, (path, response.text)
        assert len(response.json()["results"]) == len(CHOSEN)


# --- :classify --------------------------------------------------------------------------


async def test_classify_the_docs_request_answers_results_of_every_label_in_order(
    client: httpx.AsyncClient, evaluated: Evaluated, expected: np.ndarray, trained_store
) -> None:
    # api_rest.md's classify example: an `image` (binary) and a `caption` feature per example.
    examples = [{"image": b64(encode(evaluated.images[i])), "caption": f"item {i}"} for i in CHOSEN]
    response = await client.post(f"{MODEL}:classify", json={"examples": examples})
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["results"]
    labels = trained_store.metadata.labels
    assert len(body["results"]) == len(CHOSEN)
    for result, row in zip(body["results"], expected, strict=True):
        assert [label for label, _ in result] == labels
        np.testing.assert_allclose([score for _, score in result], row, atol=1e-6)


async def test_colon_classify_and_slash_classify_are_different_routes(
    client: httpx.AsyncClient, evaluated: Evaluated, server: Server
) -> None:
    png = encode(evaluated.images[0])
    tf = await client.post(f"{MODEL}:classify", json={"examples": [{"image": b64(png)}]})
    own = await client.post(f"{MODEL}/classify", json={"instances": [b64(png)]})
    assert tf.status_code == own.status_code == 200
    assert "results" in tf.json() and "model" not in tf.json()
    assert own.json()["model"] == "fashion"
    for route in ("/v1/models/{model}:classify", "/v1/models/{model}/classify"):
        assert server.metric("tagger_requests_total", route=route, method="POST", status="200")


# --- status and metadata ----------------------------------------------------------------


async def test_model_status_as_the_docs_print_it_beside_this_services_fields(
    client: httpx.AsyncClient, server: Server
) -> None:
    version = server.manager.served.version
    server.store.promote("fashion", version, "stable")
    available = {
        "version": str(version),
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    model = (await client.get(MODEL)).json()
    assert model["model_version_status"] == [available]
    assert model["served_version"] == version  # this service's own fields stay
    detail = (await client.get(f"{MODEL}/versions/{version}")).json()
    assert detail["model_version_status"] == [available]
    assert detail["labels"]
    label = await client.get(f"{MODEL}/labels/stable")
    assert label.status_code == 200, label.text
    assert label.json() == {"model_version_status": [available]}


async def test_model_metadata_field_by_field(client: httpx.AsyncClient, server: Server) -> None:
    version = server.manager.served.version
    server.store.promote("fashion", version, "stable")
    for path in ("", f"/versions/{version}", "/labels/stable"):
        response = await client.get(f"{MODEL}{path}/metadata")
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        assert body["model_spec"] == {
            "name": "fashion",
            "signature_name": "",
            "version": str(version),
        }
        signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert signature["method_name"] == "tensorflow/serving/predict"
        pixels = signature["inputs"]["pixels"]
        assert pixels["dtype"] == "DT_UINT8"
        assert pixels["name"] == "serving_default_pixels:0"
        assert [d["size"] for d in pixels["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
        probabilities = signature["outputs"]["probabilities"]
        assert probabilities["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in probabilities["tensor_shape"]["dim"]] == ["-1", "10"]


# --- errors -----------------------------------------------------------------------------

ERROR_CASES: list[tuple[str, str, Any, int, str]] = [
    ("post", "/v1/models/shoes:predict", {"instances": []}, 404, "model 'shoes' is not served"),
    ("post", f"{MODEL}/versions/99:predict", {"instances": []}, 404, "99"),
    ("post", f"{MODEL}/labels/nope:classify", {"examples": []}, 404, "nope"),
    ("post", "/v1/models/Bad!:predict", {"instances": []}, 404, "invalid model"),
    ("get", "/v1/models/shoes/metadata", None, 404, "model 'shoes' is not served"),
    ("get", f"{MODEL}/versions/99/metadata", None, 404, "99"),
    ("get", f"{MODEL}/labels/nope", None, 404, "nope"),
    ("post", f"{MODEL}:predict", {"instances": [[[[0.5]] * 28] * 28]}, 400, "uint8"),
    ("post", f"{MODEL}:predict", {"instances": [[[0] * 28] * 28]}, 400, "[28, 28, 1]"),
    ("post", f"{MODEL}:predict", {"inputs": [[[[300]] * 28] * 28]}, 400, "outside uint8"),
    ("post", f"{MODEL}:predict", {"instances": [{"b64": "%%%"}]}, 400, "base64"),
    ("post", f"{MODEL}:predict", {"instances": [{"b64": ""}]}, 400, "empty"),
    (
        "post",
        f"{MODEL}:predict",
        {"instances": [b64(b"not an image")]},
        415,
        "not a supported image",
    ),
    ("post", f"{MODEL}:predict", {"instances": [b64(b"x")] * 5}, 413, "the limit is 4"),
    ("post", f"{MODEL}:classify", {"examples": [{"image": b64(b"x")}] * 5}, 413, "limit is 4"),
    ("post", f"{MODEL}:predict", {"signature_name": "x", "instances": [1]}, 400, '"x" not found'),
    ("post", f"{MODEL}:predict", {"inputs": [], "instances": []}, 400, "only one of"),
    ("post", f"{MODEL}:classify", {"instances": [b64(b"x")]}, 400, "'examples' is expected"),
    ("post", f"{MODEL}:predict", "instances = [1, 2]", 400, "not valid JSON"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"), ERROR_CASES, ids=lambda c: str(c)[:40]
)
async def test_errors_answer_the_tf_serving_error_body(
    client: httpx.AsyncClient, method: str, path: str, body: Any, status: int, words: str
) -> None:
    if body is None:
        response = await client.get(path)
    elif isinstance(body, str):
        response = await client.post(path, content=body)
    else:
        response = await client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert list(error) == ["error"] and isinstance(error["error"], str)
    assert words in error["error"]


async def test_overload_answers_503_with_retry_after_in_tf_servings_body(
    shared_root, evaluated: Evaluated
) -> None:
    settings = make_settings(
        shared_root, max_batch_size=2, max_in_flight_requests=1, retry_after_s=3
    )
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            server.gate.hold()
            body = {"instances": [pixels_of(evaluated, 0)]}
            held = asyncio.ensure_future(http.post(f"{MODEL}:predict", json=body))
            await server.until(server.gate.entered.is_set)
            refused = await http.post(
                f"{MODEL}:classify", json={"examples": [{"image": b64(b"x")}]}
            )
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "3"
            assert refused.json() == {"error": "1 requests are already in progress; retry shortly"}
            server.gate.release()
            assert (await held).status_code == 200


async def test_requests_of_every_protocol_share_one_batch(
    shared_root, evaluated: Evaluated
) -> None:
    """TF Serving, OIP v2 and this service's own API feed one batcher, and the route label of
    `tagger_requests_total` tells them apart."""
    settings = make_settings(shared_root, max_batch_size=8, max_batch_delay_ms=200)
    oip_body = {
        "inputs": [
            {
                "name": "pixels",
                "datatype": "UINT8",
                "shape": [1, 28, 28, 1],
                "data": evaluated.images[3].reshape(-1).tolist(),
            }
        ]
    }
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            server.gate.hold()
            first = asyncio.ensure_future(
                http.post(f"{MODEL}:predict", json={"instances": [pixels_of(evaluated, 0)]})
            )
            await server.until(server.gate.entered.is_set)  # the model is busy with `first`
            png = encode(evaluated.images[1])
            together = [
                asyncio.ensure_future(
                    http.post(f"{MODEL}:predict", json={"instances": [pixels_of(evaluated, 2)]})
                ),
                asyncio.ensure_future(
                    http.post(f"{MODEL}:classify", json={"examples": [{"image": b64(png)}]})
                ),
                asyncio.ensure_future(http.post(f"{MODEL}/classify", files={"file": png})),
                asyncio.ensure_future(http.post("/v2/models/fashion/infer", json=oip_body)),
            ]
            await server.until(lambda: server.metric("tagger_queue_depth", model="fashion") == 4)
            server.gate.release()
            answers = await asyncio.gather(first, *together)
            assert [answer.status_code for answer in answers] == [200] * 5
        assert server.gate.batch_sizes[-1] == 4  # one batch of the three protocols' images
        for route in (
            "/v1/models/{model}:predict",
            "/v1/models/{model}:classify",
            "/v1/models/{model}/classify",
            "/v2/models/{model}/infer",
        ):
            counted = server.metric(
                "tagger_requests_total", route=route, method="POST", status="200"
            )
            assert counted >= 1, route


async def test_auth_401_on_every_tf_serving_route_in_its_error_body(tmp_path) -> None:
    from prometheus_client import CollectorRegistry

    from app.config import Settings
    from app.main import create_app

    settings = Settings(model_store=tmp_path, poll_interval_s=0, api_key="s3cret")
    app = create_app(settings, registry=CollectorRegistry())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for method, path in [
            ("POST", f"{MODEL}:predict"),
            ("POST", f"{MODEL}/versions/1:classify"),
            ("GET", f"{MODEL}/metadata"),
            ("GET", f"{MODEL}/labels/stable"),
        ]:
            response = await http.request(method, path, json={"instances": []})
            assert response.status_code == 401, (path, response.text)
            assert list(response.json()) == ["error"]
            keyed = await http.request(
                method, path, json={"instances": []}, headers={"authorization": "Bearer s3cret"}
            )
            assert keyed.status_code != 401
