"""The API docs follow the API key, and /openapi.json says what the server enforces.

No model is needed: the app runs in process (httpx.ASGITransport, no lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.config import Settings
from app.main import create_app

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOCS = ("/docs", "/redoc", "/openapi.json")
CLASSIFY = (
    "/v1/models/{model}/classify",
    "/v1/models/{model}/versions/{version}/classify",
    "/v1/models/{model}/labels/{alias}/classify",
)


@asynccontextmanager
async def in_process(tmp_path: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(model_store=tmp_path, poll_interval_s=0, **overrides)
    app = create_app(settings, registry=CollectorRegistry())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_docs_and_schema_need_the_key_when_one_is_set(tmp_path: Path) -> None:
    async with in_process(tmp_path, api_key="s3cret") as http:
        for path in DOCS:
            response = await http.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "unauthorized"
            with_key = await http.get(path, headers={"authorization": "Bearer s3cret"})
            assert with_key.status_code == 200, path
            assert (await http.get(path, headers={"x-api-key": "s3cret"})).status_code == 200


async def test_operators_can_open_the_docs(tmp_path: Path) -> None:
    exempt = "/healthz,/docs,/redoc,/openapi.json"
    async with in_process(tmp_path, api_key="s3cret", auth_exempt_paths=exempt) as http:
        for path in DOCS:
            assert (await http.get(path)).status_code == 200, path
        assert (await http.get("/v1/models")).status_code == 401
    async with in_process(tmp_path) as http:  # no key: everything is open
        for path in DOCS:
            assert (await http.get(path)).status_code == 200, path


async def test_the_schema_states_the_limits_the_server_enforces(tmp_path: Path) -> None:
    async with in_process(tmp_path, max_images_per_request=7) as http:
        schema = (await http.get("/openapi.json")).json()
    for path in CLASSIFY:
        operation = schema["paths"][path]["post"]
        content = operation["requestBody"]["content"]
        instances = content["application/json"]["schema"]["properties"]["instances"]
        assert instances["items"]["required"] == ["b64"]
        assert (instances["minItems"], instances["maxItems"]) == (1, 7)
        files = content["multipart/form-data"]["schema"]["properties"]["file"]
        assert (files["minItems"], files["maxItems"]) == (1, 7)
        assert content["multipart/form-data"]["schema"]["required"] == ["file"]
        params = {p["name"]: p["schema"] for p in operation["parameters"]}
        assert params["top_k"]["minimum"] == 1
        assert params["model"]["pattern"] == "^[a-z0-9][a-z0-9_-]*$"
        assert params["model"]["maxLength"] == 128
        if "version" in params:
            assert params["version"]["pattern"] == "^(0|[1-9][0-9]*)$"
        for status in ("400", "404", "408", "413", "415", "422", "431", "503", "504"):
            body = operation["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorResponse"}, (path, status)
        assert "Retry-After" in operation["responses"]["503"]["headers"]
        assert "401" not in operation["responses"]  # no key configured
    readyz = schema["paths"]["/readyz"]["get"]["responses"]["503"]
    assert "Retry-After" in readyz["headers"]
    assert "HTTPValidationError" not in str(schema)  # invalid paths are 404s, not FastAPI's 422


async def test_the_schema_lists_401_where_the_key_is_required(tmp_path: Path) -> None:
    key = {"authorization": "Bearer k"}
    async with in_process(tmp_path, api_key="k", auth_exempt_paths="/healthz,/readyz") as http:
        schema = (await http.get("/openapi.json", headers=key)).json()
    for path, item in schema["paths"].items():
        for operation in item.values():
            open_path = path in ("/healthz", "/readyz")
            assert ("401" in operation["responses"]) is not open_path, path
            assert ("security" in operation) is not open_path, path
