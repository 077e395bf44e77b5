"""Auth, metrics, model listing, and `python -m app` as a real process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from app_helpers import Evaluated, Server, encode, make_settings, run_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

URL = "/v1/models/fashion/classify"
METRIC_NAMES = (
    "tagger_requests_total",
    "tagger_request_duration_seconds",
    "tagger_image_decode_seconds",
    "tagger_queue_depth",
    "tagger_batch_size",
    "tagger_batch_wait_seconds",
    "tagger_inference_seconds",
    "tagger_predictions_total",
    "tagger_images_rejected_total",
    "tagger_model_info",
    "tagger_model_reload_failures_total",
    "tagger_requests_in_flight",
)


async def test_api_key_is_required_when_set_and_health_stays_open(
    shared_root: Path, evaluated: Evaluated
) -> None:
    files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    with run_server(make_settings(shared_root, api_key="s3cret")) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            missing = await http.post(URL, files=files)
            assert missing.status_code == 401
            assert missing.json()["error"]["code"] == "unauthorized"
            assert "X-API-Key" in missing.json()["error"]["message"]
            assert missing.headers["www-authenticate"] == "Bearer"
            wrong = await http.post(URL, files=files, headers={"x-api-key": "s3creT"})
            assert wrong.status_code == 401
            assert wrong.json()["error"]["message"] == "invalid API key"
            bearer = await http.post(URL, files=files, headers={"authorization": "Bearer s3cret"})
            assert bearer.status_code == 200
            header = await http.post(URL, files=files, headers={"x-api-key": "s3cret"})
            assert header.status_code == 200
            assert (await http.get("/v1/models")).status_code == 401
            for path in ("/healthz", "/readyz", "/metrics"):
                assert (await http.get(path)).status_code == 200, path


async def test_exempt_paths_are_configurable(shared_root: Path) -> None:
    settings = make_settings(shared_root, api_key="k", auth_exempt_paths="/healthz")
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/metrics")).status_code == 401
            assert (await http.get("/metrics", headers={"x-api-key": "k"})).status_code == 200


async def test_metrics_expose_every_documented_series(
    client: httpx.AsyncClient, server: Server, evaluated: Evaluated, trained_store
) -> None:
    files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    assert (await client.post(URL, files=files)).status_code == 200
    await client.post(URL, files={"file": ("a.txt", b"text", "text/plain")})
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in METRIC_NAMES:
        assert f"# HELP {name} " in text, name
    version = trained_store.version
    served = f'tagger_model_info{{model="fashion",runtime="onnxruntime",version="{version}"}} 1.0'
    assert served in text
    assert 'route="/v1/models/{model}/classify"' in text
    assert 'tagger_images_rejected_total{reason="unsupported_media_type"}' in text


async def test_models_endpoints_describe_the_store_and_what_is_served(
    client: httpx.AsyncClient, trained_store
) -> None:
    version = trained_store.version
    listing = (await client.get("/v1/models")).json()["models"]
    assert [m["name"] for m in listing] == ["fashion"]
    assert listing[0]["served_version"] == version
    model = (await client.get("/v1/models/fashion")).json()
    assert model["versions"] == [version]
    assert model["loaded_versions"] == [version]
    detail = (await client.get(f"/v1/models/fashion/versions/{version}")).json()
    assert detail["served"] is True
    assert detail["labels"] == trained_store.metadata.labels
    assert detail["input"] == {"height": 28, "width": 28, "channels": 1, "dtype": "uint8"}
    assert 0 <= detail["test_metrics"]["accuracy"] <= 1
    docs = await client.get("/openapi.json")
    assert "/v1/models/{model}/classify" in docs.json()["paths"]
