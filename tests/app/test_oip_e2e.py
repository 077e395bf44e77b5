"""Open Inference Protocol v2 over real uvicorn, spoken by the published `tritonclient[http]`:
health, metadata, and inference with UINT8 pixels (binary and JSON), classification and BYTES
PNG files, giving what this service's own classify API gives for the same images."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio
from app_helpers import Evaluated, Server, encode

from model_store.signature import INPUT_NAME, OUTPUT_NAME

MODEL = "fashion"


@pytest.fixture(scope="module")
def triton_client(server: Server) -> triton.InferenceServerClient:
    http = triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=60)
    yield http
    http.close()


def pixels_input(images: np.ndarray, binary: bool = True) -> triton.InferInput:
    batch = images[..., np.newaxis]  # [N, 28, 28, 1]
    tensor = triton.InferInput(INPUT_NAME, list(batch.shape), "UINT8")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    return tensor


def png_input(images: np.ndarray) -> triton.InferInput:
    files = np.array([encode(image) for image in images], dtype=object)
    tensor = triton.InferInput(INPUT_NAME, [len(files)], "BYTES")
    tensor.set_data_from_numpy(files, binary_data=True)
    return tensor


def classify_api(server: Server, images: np.ndarray, labels: list[str]) -> np.ndarray:
    """The probabilities this service's own API gives for the same images, as PNG uploads."""
    files = [("file", (f"{i}.png", encode(image), "image/png")) for i, image in enumerate(images)]
    response = httpx.post(
        f"{server.url}/v1/models/{MODEL}/classify",
        params={"top_k": len(labels)},
        files=files,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    rows = np.zeros((len(images), len(labels)))
    for row, result in zip(rows, response.json()["results"], strict=True):
        for prediction in result["predictions"]:
            row[labels.index(prediction["label"])] = prediction["confidence"]
    return rows


def test_health_and_readiness(triton_client: triton.InferenceServerClient, trained_store) -> None:
    assert triton_client.is_server_live()
    assert triton_client.is_server_ready()
    assert triton_client.is_model_ready(MODEL)
    assert triton_client.is_model_ready(MODEL, str(trained_store.version))
    assert not triton_client.is_model_ready(MODEL, "999")
    assert not triton_client.is_model_ready("shoes")


def test_server_metadata(triton_client: triton.InferenceServerClient) -> None:
    metadata = triton_client.get_server_metadata()
    assert metadata["name"] == "cnn-tagger"
    assert metadata["version"]
    assert set(metadata["extensions"]) >= {"binary_tensor_data", "classification"}


def test_model_metadata_describes_the_signature(
    triton_client: triton.InferenceServerClient, trained_store
) -> None:
    labels = trained_store.metadata.labels
    expected = {
        "name": MODEL,
        "versions": [str(trained_store.version)],
        "platform": "onnxruntime_onnx",  # auto: the version has model.onnx
        "inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [-1, 28, 28, 1]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, len(labels)]}],
    }
    assert triton_client.get_model_metadata(MODEL) == expected
    assert triton_client.get_model_metadata(MODEL, str(trained_store.version)) == expected


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_uint8_pixels_give_the_probabilities_of_the_classify_api(
    triton_client: triton.InferenceServerClient,
    server: Server,
    evaluated: Evaluated,
    trained_store,
    binary: bool,
) -> None:
    images = evaluated.images[:4]
    outputs = [triton.InferRequestedOutput(OUTPUT_NAME, binary_data=binary)]

    result = triton_client.infer(
        MODEL, [pixels_input(images, binary)], outputs=outputs, request_id="r-1"
    )

    probabilities = result.as_numpy(OUTPUT_NAME)
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (4, len(trained_store.metadata.labels))
    expected = classify_api(server, images, trained_store.metadata.labels)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    response = result.get_response()
    assert response["id"] == "r-1"
    assert response["model_name"] == MODEL
    assert response["model_version"] == str(trained_store.version)
    assert ("parameters" in response["outputs"][0]) == binary


def test_without_outputs_every_output_comes_back_binary(
    triton_client: triton.InferenceServerClient, evaluated: Evaluated, trained_store
) -> None:
    result = triton_client.infer(MODEL, [pixels_input(evaluated.images[:2])])
    (output,) = result.get_response()["outputs"]
    assert output["name"] == OUTPUT_NAME
    assert output["parameters"]["binary_data_size"] == 2 * len(trained_store.metadata.labels) * 4
    assert "id" not in result.get_response()


def test_a_pinned_version_answers_through_its_path(
    triton_client: triton.InferenceServerClient, evaluated: Evaluated, trained_store
) -> None:
    version = str(trained_store.version)
    result = triton_client.infer(MODEL, [pixels_input(evaluated.images[:1])], model_version=version)
    assert result.get_response()["model_version"] == version


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_classification_answers_triton_class_strings(
    triton_client: triton.InferenceServerClient, evaluated: Evaluated, trained_store, binary: bool
) -> None:
    labels = trained_store.metadata.labels
    images = evaluated.images[:3]
    outputs = [triton.InferRequestedOutput(OUTPUT_NAME, binary_data=binary, class_count=3)]

    result = triton_client.infer(MODEL, [pixels_input(images)], outputs=outputs)

    classes = result.as_numpy(OUTPUT_NAME)
    assert classes.shape == (3, 3)
    for row, expected in zip(classes, evaluated.probabilities[:3], strict=True):
        parsed = [(item if binary else item.encode()).decode().split(":", 2) for item in row]
        best = np.argsort(-expected, kind="stable")[:3]
        assert [int(index) for _, index, _ in parsed] == best.tolist()
        assert [label for _, _, label in parsed] == [labels[i] for i in best]
        scores = [float(score) for score, _, _ in parsed]
        np.testing.assert_allclose(scores, expected[best], atol=1e-5)
        assert all(len(score.split(".")[1]) == 6 for score, _, _ in parsed)  # "%f", as Triton


def test_bytes_png_files_give_the_probabilities_of_the_classify_api(
    triton_client: triton.InferenceServerClient, server: Server, evaluated: Evaluated, trained_store
) -> None:
    images = evaluated.images[4:8]

    result = triton_client.infer(MODEL, [png_input(images)])

    expected = classify_api(server, images, trained_store.metadata.labels)
    np.testing.assert_allclose(result.as_numpy(OUTPUT_NAME), expected, atol=1e-6)


def test_a_gzip_request_body_is_inflated(
    triton_client: triton.InferenceServerClient, evaluated: Evaluated
) -> None:
    plain = triton_client.infer(MODEL, [pixels_input(evaluated.images[:2])]).as_numpy(OUTPUT_NAME)
    for algorithm in ("gzip", "deflate"):
        result = triton_client.infer(
            MODEL,
            [pixels_input(evaluated.images[:2])],
            request_compression_algorithm=algorithm,
        )
        np.testing.assert_allclose(result.as_numpy(OUTPUT_NAME), plain, atol=1e-6)


def queued(server: Server, batches_before: int) -> float:
    """Images in the model (held) and in the batch queue."""
    held = sum(server.gate.batch_sizes[batches_before:])
    return held + server.metric("tagger_queue_depth", model=MODEL)


@pytest.mark.asyncio(loop_scope="session")
async def test_concurrent_async_clients_are_batched_together(
    server: Server, evaluated: Evaluated
) -> None:
    """16 single-image requests from tritonclient's asyncio client, held at the model until all
    are queued: they run in batches of more than one image."""
    client = triton_aio.InferenceServerClient(server.url.removeprefix("http://"), conn_limit=32)
    label = {"route": "/v2/models/{model}/infer", "method": "POST", "status": "200"}
    before = server.metric("tagger_requests_total", **label)
    batches_before = len(server.gate.batch_sizes)
    try:
        server.gate.hold()
        tasks = [
            asyncio.ensure_future(client.infer(MODEL, [pixels_input(evaluated.images[i : i + 1])]))
            for i in range(16)
        ]
        await server.until(lambda: queued(server, batches_before) == 16)
        server.gate.release()
        results = await asyncio.gather(*tasks)
    finally:
        server.gate.release()
        await client.close()
    for i, result in enumerate(results):
        np.testing.assert_allclose(
            result.as_numpy(OUTPUT_NAME)[0], evaluated.probabilities[i], atol=1e-5
        )
    sizes = server.gate.batch_sizes[batches_before:]
    assert sum(sizes) == 16
    assert max(sizes) > 1
    assert server.metric("tagger_requests_total", **label) == before + 16
