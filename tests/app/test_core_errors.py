"""The serving core's protocol-neutral errors answer, at today's API edge, the status, code,
message and Retry-After they always did (no model needed: the app runs in process)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.api.errors import install_error_handlers
from app.core.errors import (
    DeadlineExceeded,
    InputProblem,
    InvalidInput,
    ModelFailure,
    NotFound,
    NotReady,
    Overloaded,
    ServingError,
    from_store_error,
)
from model_store.errors import AliasNotFound, CorruptVersion, InvalidName

pytestmark = pytest.mark.asyncio(loop_scope="session")

CASES: list[tuple[ServingError, int, str | None]] = [
    (NotFound("model 'shoes' is not served here", "model_not_found"), 404, None),
    (from_store_error(AliasNotFound("no alias 'beta'")), 404, None),
    (from_store_error(InvalidName("bad name")), 404, None),
    (NotReady("the model is still loading", 3), 503, "3"),
    (Overloaded("the batch queue is full", 2), 503, "2"),
    (Overloaded("v3 cannot load now; retry in 41 s", 41, "version_load_budget"), 503, "41"),
    (DeadlineExceeded(2.5), 504, None),
    (InvalidInput("the file is empty", "empty_file"), 400, None),
    (InvalidInput("too many pixels", "image_too_large", InputProblem.TOO_LARGE), 413, None),
    (InvalidInput("not an image", "unsupported_media_type", InputProblem.UNSUPPORTED), 415, None),
    (InvalidInput("too narrow", "extreme_aspect_ratio", InputProblem.OUT_OF_RANGE), 422, None),
    (ModelFailure("v3 could not be loaded; see the server log", "model_load_failed"), 500, None),
    (from_store_error(CorruptVersion("v3 is damaged")), 500, None),
]


@pytest.mark.parametrize(("error", "status", "retry_after"), CASES, ids=lambda c: str(c)[:30])
async def test_each_core_error_answers_its_status_and_the_one_error_shape(
    error: ServingError, status: int, retry_after: str | None
) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fail")
    async def fail() -> None:
        raise error

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/fail")
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": error.code, "message": error.message, "request_id": ""}
    }
    assert response.headers.get("retry-after") == retry_after


async def test_the_deadline_message_names_the_requests_time_limit() -> None:
    error = DeadlineExceeded(2.5)
    assert (error.code, error.message) == (
        "deadline_exceeded",
        "the request did not finish within 2.5 s",
    )


async def test_an_unknown_model_never_shows_the_servers_store_path(tmp_path) -> None:
    from prometheus_client import CollectorRegistry

    from app.config import Settings
    from app.main import create_app

    store_root = tmp_path / "private" / "models"
    store_root.mkdir(parents=True)
    app = create_app(
        Settings(model_store=store_root, model_name="fashion", poll_interval_s=0),
        registry=CollectorRegistry(),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for method, path in [
            ("GET", "/v1/models/nope"),
            ("GET", "/v1/models/nope/metadata"),
            ("GET", "/v2/models/nope"),
        ]:
            response = await http.request(method, path)
            assert response.status_code == 404, (path, response.text)
            assert "nope" in response.json()["error"].__str__(), path
            assert str(tmp_path) not in response.text, (path, response.text)
