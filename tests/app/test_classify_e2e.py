"""End to end over real uvicorn: the service answers what the evaluated model answered."""

from __future__ import annotations

import asyncio
import base64

import httpx
import numpy as np
import pytest
from app_helpers import Evaluated, Server, encode

pytestmark = pytest.mark.asyncio(loop_scope="session")

LABELS_URL = "/v1/models/fashion/classify"


def _probabilities(body: dict, labels: list[str]) -> np.ndarray:
    """The confidences a result gives, as a vector in label order (top_k = all labels)."""
    vector = np.full(len(labels), np.nan, dtype=np.float64)
    for prediction in body["predictions"]:
        vector[labels.index(prediction["label"])] = prediction["confidence"]
    return vector


async def test_png_uploads_match_the_evaluated_probabilities(
    client: httpx.AsyncClient, server: Server, evaluated: Evaluated, trained_store
) -> None:
    labels = trained_store.metadata.labels
    for pixels, expected in zip(evaluated.images[:60], evaluated.probabilities[:60], strict=True):
        response = await client.post(
            LABELS_URL,
            params={"top_k": len(labels)},
            files={"file": ("item.png", encode(pixels), "image/png")},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == "fashion"
        assert body["version"] == trained_store.version
        confidences = [p["confidence"] for p in body["predictions"]]
        assert confidences == sorted(confidences, reverse=True)
        assert body["predictions"][0]["label"] == labels[int(np.argmax(expected))]
        np.testing.assert_allclose(_probabilities(body, labels), expected, atol=1e-5)


async def test_jpeg_uploads_agree_on_the_top_label(
    client: httpx.AsyncClient, evaluated: Evaluated, trained_store
) -> None:
    labels = trained_store.metadata.labels
    uploads = asyncio.Semaphore(8)  # one image per request, 8 requests at a time

    async def top_label(pixels: np.ndarray) -> str:
        jpeg = encode(pixels, "JPEG", quality=95)
        async with uploads:
            response = await client.post(LABELS_URL, files={"file": ("x.jpg", jpeg, "image/jpeg")})
        assert response.status_code == 200, response.text
        return response.json()["predictions"][0]["label"]

    served = await asyncio.gather(*(top_label(pixels) for pixels in evaluated.images))
    expected = [labels[int(i)] for i in evaluated.probabilities.argmax(axis=1)]
    agree = sum(a == b for a, b in zip(served, expected, strict=True))
    assert agree >= 0.98 * len(evaluated.images)


async def test_several_images_in_one_multipart_request_come_back_in_order(
    client: httpx.AsyncClient, evaluated: Evaluated, trained_store
) -> None:
    labels = trained_store.metadata.labels
    chosen = [3, 0, 7, 1]
    files = [("file", (f"{i}.png", encode(evaluated.images[i]), "image/png")) for i in chosen]
    response = await client.post(LABELS_URL, params={"top_k": 3}, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["results"]) == len(chosen)
    assert body["predictions"] == body["results"][0]["predictions"]
    for i, result in zip(chosen, body["results"], strict=True):
        assert len(result["predictions"]) == 3
        top = result["predictions"][0]
        assert top["label"] == labels[int(np.argmax(evaluated.probabilities[i]))]
        assert abs(top["confidence"] - float(evaluated.probabilities[i].max())) < 1e-5


async def test_base64_json_instances_come_back_in_order(
    client: httpx.AsyncClient, evaluated: Evaluated, trained_store
) -> None:
    labels = trained_store.metadata.labels
    chosen = [5, 2, 9]
    instances = [{"b64": base64.b64encode(encode(evaluated.images[i])).decode()} for i in chosen]
    response = await client.post(LABELS_URL, json={"instances": instances})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["predictions"][0]["label"] for r in results] == [
        labels[int(np.argmax(evaluated.probabilities[i]))] for i in chosen
    ]
    assert all(len(r["predictions"]) == 5 for r in results)


async def test_a_raw_image_body_is_accepted(
    client: httpx.AsyncClient, evaluated: Evaluated, trained_store
) -> None:
    labels = trained_store.metadata.labels
    response = await client.post(
        LABELS_URL, content=encode(evaluated.images[4]), headers={"content-type": "image/png"}
    )
    assert response.status_code == 200, response.text
    top = response.json()["predictions"][0]["label"]
    assert top == labels[int(np.argmax(evaluated.probabilities[4]))]


async def test_pinned_version_and_alias_routes(
    client: httpx.AsyncClient, server: Server, evaluated: Evaluated, trained_store
) -> None:
    version = trained_store.version
    server.store.promote("fashion", version, "stable")
    png = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    for path in (
        f"/v1/models/fashion/versions/{version}/classify",
        "/v1/models/fashion/labels/stable/classify",
    ):
        response = await client.post(path, files=png)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version
