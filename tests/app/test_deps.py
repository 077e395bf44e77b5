"""Typed dependencies (app.api.deps): every dependency runs on the event loop, and the routes
answer in process without a lifespan as they did when they read `app.state` themselves."""

from __future__ import annotations

import inspect
from pathlib import Path

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry

from app.api.auth import require_api_key
from app.api.routes import classify, docs, evaluation, health, models
from app.api.routes.params import reject_encoded_slash
from app.config import Settings
from app.main import create_app

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _calls(dependant: Dependant) -> list[object]:
    found = []
    for sub in dependant.dependencies:
        found.append(sub.call)
        found.extend(_calls(sub))
    return found


async def test_every_dependency_runs_on_the_event_loop() -> None:
    """A plain `def` dependency is run on FastAPI's thread pool: one thread hop per request."""
    routes = [r for m in (classify, docs, evaluation, health, models) for r in m.router.routes]
    dependants = [r.dependant for r in routes if isinstance(r, APIRoute)]
    dependants.append(get_dependant(path="/", call=require_api_key))
    calls = [require_api_key, *(call for d in dependants for call in _calls(d))]
    assert len(dependants) == len(routes) + 1 and reject_encoded_slash in calls
    for call in calls:
        run = call if inspect.isfunction(call) else type(call).__call__  # security schemes
        assert inspect.iscoroutinefunction(run), f"{call!r} is not async"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/other/classify",
        "/v1/models/other/versions/1/classify",
        "/v1/models/other/labels/stable/classify",
    ],
)
async def test_classify_answers_unknown_models_in_process(tmp_path: Path, path: str) -> None:
    """No lifespan (httpx.ASGITransport): the route still answers 404, not a dependency's 500."""
    settings = Settings(model_store=tmp_path, model_name="fashion", poll_interval_s=0)
    app = create_app(settings, registry=CollectorRegistry())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post(path, content=b"x", headers={"content-type": "image/png"})
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "model_not_found"
