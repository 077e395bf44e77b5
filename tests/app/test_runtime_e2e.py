"""End to end over real uvicorn: model.onnx served by ONNX Runtime answers what the SavedModel
answered at evaluation, and a damaged model.onnx leaves the version to TensorFlow."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import numpy as np
import pytest
from app_helpers import Evaluated, encode, make_settings, run_server

from model_store.signature import ONNX_FILE

pytestmark = pytest.mark.asyncio(loop_scope="session")

URL = "/v1/models/fashion/classify"
PER_REQUEST = 32


async def _classify_all(http: httpx.AsyncClient, images: np.ndarray, classes: int) -> list[dict]:
    """Every image's result (all `classes` predictions), uploaded as PNGs PER_REQUEST at a time."""
    results = []
    for start in range(0, len(images), PER_REQUEST):
        chunk = images[start : start + PER_REQUEST]
        files = [
            ("file", (f"{i}.png", encode(pixels), "image/png")) for i, pixels in enumerate(chunk)
        ]
        response = await http.post(URL, files=files, params={"top_k": classes})
        assert response.status_code == 200, response.text
        results += response.json()["results"]
    return results


def _probabilities(result: dict, labels: list[str]) -> np.ndarray:
    by_label = {p["label"]: p["confidence"] for p in result["predictions"]}
    return np.array([by_label[label] for label in labels])


async def test_onnxruntime_serves_the_evaluated_top1_and_probabilities(
    shared_root: Path, evaluated: Evaluated, trained_store, caplog: pytest.LogCaptureFixture
) -> None:
    labels = trained_store.metadata.labels
    caplog.set_level(logging.INFO, logger="app.core.model_manager")
    settings = make_settings(shared_root, runtime="onnxruntime", max_images_per_request=PER_REQUEST)
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            summary = (await http.get("/v1/models/fashion")).json()
            detail = (await http.get(f"/v1/models/fashion/versions/{trained_store.version}")).json()
            results = await _classify_all(http, evaluated.images, len(labels))
        info = {"model": "fashion", "version": str(trained_store.version)}
        assert server.metric("tagger_model_info", **info, runtime="onnxruntime") == 1
    assert summary["runtime"] == "onnxruntime"
    assert detail["runtime"] == "onnxruntime"
    serving = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serving ")]
    assert serving and "with onnxruntime on CPUExecutionProvider" in serving[-1]
    top1 = [result["predictions"][0]["label"] for result in results]
    assert top1 == [labels[i] for i in evaluated.probabilities.argmax(axis=1)]
    served = np.stack([_probabilities(result, labels) for result in results])
    np.testing.assert_allclose(served, evaluated.probabilities, atol=1e-4)


async def test_auto_serves_a_version_with_a_corrupt_model_onnx_through_tensorflow(
    store_root: Path, evaluated: Evaluated, trained_store, caplog: pytest.LogCaptureFixture
) -> None:
    onnx = store_root / "fashion" / str(trained_store.version) / ONNX_FILE
    damaged = bytearray(onnx.read_bytes())
    damaged[len(damaged) // 2 : len(damaged) // 2 + 64] = bytes(64)  # zeroes in the weights
    onnx.write_bytes(bytes(damaged))
    labels = trained_store.metadata.labels
    caplog.set_level(logging.WARNING, logger="app.core.servable")
    settings = make_settings(store_root, max_images_per_request=PER_REQUEST)
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            results = await _classify_all(http, evaluated.images[:64], len(labels))
            summary = (await http.get("/v1/models/fashion")).json()
            ready = (await http.get("/readyz")).json()
        failures = server.metric("tagger_model_reload_failures_total", model="fashion")
        info = {"model": "fashion", "version": str(trained_store.version)}
        assert server.metric("tagger_model_info", **info, runtime="tensorflow") == 1
    assert summary["runtime"] == "tensorflow"
    assert (ready["version"], ready["fallback"]) == (trained_store.version, False)
    assert failures == 1
    assert any(
        r.levelno == logging.WARNING and "serving it through TensorFlow" in r.getMessage()
        for r in caplog.records
    )
    served = np.stack([_probabilities(result, labels) for result in results])
    np.testing.assert_allclose(served, evaluated.probabilities[:64], atol=1e-5)
