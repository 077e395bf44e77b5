"""GET /v1/limits reports the request limits clients split their work by."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from app.config import Settings
from app.main import create_app
from model_store import ModelStore


async def test_limits_are_the_settings(tmp_path: Path) -> None:
    settings = Settings(model_store=tmp_path, max_images_per_request=8, max_upload_bytes=123_456)
    app = create_app(settings, registry=CollectorRegistry(), store=ModelStore(tmp_path))
    transport = httpx.ASGITransport(app=app)  # no model needed: no lifespan, no server
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/v1/limits")
    assert response.status_code == 200
    assert response.json() == {"max_images_per_request": 8, "max_upload_bytes": 123_456}
