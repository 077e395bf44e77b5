"""POST an image (or several), get the top-k labels with confidences."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from app.api.deps import decode_budget_of, decode_executor_of, manager_of, metrics_of, settings_of
from app.api.errors import ApiError, ClientGone
from app.api.openapi import MAX_ITEMS_SETTING, MAXIMUM_IS_LABEL_COUNT
from app.api.routes.params import AliasName, ModelName, VersionNumber, reject_encoded_slash
from app.api.schemas import ClassifyResponse, error_responses
from app.api.uploads import read_uploads
from app.config import Settings
from app.core.batcher import BatcherClosed
from app.core.decode_budget import DecodeBudget
from app.core.decoding import decode_all
from app.core.errors import DeadlineExceeded
from app.core.model_manager import ModelManager, Servable
from app.metrics import Metrics

router = APIRouter(
    prefix="/v1/models/{model}",
    tags=["classify"],
    dependencies=[Depends(reject_encoded_slash)],
    responses=error_responses(400, 404, 408, 413, 415, 422, 431, 503, 504),
)

T = TypeVar("T")
# The bounds are declared for the schema only: the check (422 `invalid_top_k`) knows the
# number of labels of the version that answers, the schema that of the served version.
TopK = Annotated[
    int,
    Query(
        description="labels per image, 1..number of labels",
        json_schema_extra={"minimum": 1, MAXIMUM_IS_LABEL_COUNT: True},
    ),
]
_SWAP_RETRIES = 3


@dataclass(frozen=True)
class _Serving:
    """What a classification needs from the service."""

    settings: Settings
    metrics: Metrics
    manager: ModelManager
    decode_executor: ThreadPoolExecutor
    decode_budget: DecodeBudget


async def _serving(request: Request) -> _Serving:
    """One dependency for the classify routes, built once per app: FastAPI solves every
    sub-dependency on every request, and this is the hot path."""
    state = request.app.state
    serving: _Serving | None = getattr(state, "classify_serving", None)
    if serving is None:
        app = request.app
        serving = state.classify_serving = _Serving(
            settings_of(app),
            metrics_of(app),
            manager_of(app),
            decode_executor_of(app),
            decode_budget_of(app),
        )
    return serving


_ServingDep = Annotated[_Serving, Depends(_serving)]

_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary", "minLength": 1},
                            "minItems": 1,
                            MAX_ITEMS_SETTING: "max_images_per_request",
                        }
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["instances"],
                    "properties": {
                        "instances": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["b64"],
                                "properties": {
                                    # The shortest base64 of a non-empty file has 4 characters.
                                    "b64": {"type": "string", "format": "byte", "minLength": 4}
                                },
                            },
                            "minItems": 1,
                            MAX_ITEMS_SETTING: "max_images_per_request",
                        }
                    },
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
        },
    }
}
_ROUTE = {"response_model": ClassifyResponse, "openapi_extra": _REQUEST_BODY}


@router.post("/classify", **_ROUTE)
async def classify(
    request: Request, model: ModelName, serving: _ServingDep, top_k: TopK = 5
) -> Response:
    """Classify with the served version (the configured alias, or the latest)."""
    return await _classify(request, serving, model, None, top_k)


@router.post("/versions/{version}/classify", **_ROUTE)
async def classify_version(
    request: Request,
    model: ModelName,
    version: VersionNumber,
    serving: _ServingDep,
    top_k: TopK = 5,
) -> Response:
    """Classify with one pinned version."""
    return await _classify(request, serving, model, int(version), top_k)


@router.post("/labels/{alias}/classify", **_ROUTE)
async def classify_alias(
    request: Request, model: ModelName, alias: AliasName, serving: _ServingDep, top_k: TopK = 5
) -> Response:
    """Classify with the version an alias (e.g. `stable`, `canary`) points at now."""
    return await _classify(request, serving, model, alias, top_k)


async def _classify(
    request: Request, serving: _Serving, model: str, ref: int | str | None, top_k: int
) -> Response:
    # Requests past TAGGER_MAX_IN_FLIGHT_REQUESTS never get here (app.api.admission refuses them).
    settings, metrics, manager = serving.settings, serving.metrics, serving.manager
    timeout_s = settings.request_timeout_s
    deadline = time.monotonic() + timeout_s
    servable = await manager.get(model, ref)
    labels = servable.model.labels
    if not 1 <= top_k <= len(labels):
        raise ApiError(
            422,
            "invalid_top_k",
            f"top_k must be between 1 and {len(labels)} (the number of labels); got {top_k}",
        )
    uploads = await read_uploads(request, settings, metrics)
    request.state.images = len(uploads)
    metadata, pixels = None, []
    for attempt in range(_SWAP_RETRIES):
        if servable.model.metadata != metadata:
            metadata = servable.model.metadata
            pixels = await decode_all(
                uploads,
                metadata,
                settings,
                metrics,
                serving.decode_executor,
                serving.decode_budget,
                deadline,  # the request's own clock, started when it arrived
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(timeout_s)
        work = servable.batcher.submit(pixels, remaining, budget_s=timeout_s)
        try:
            rows = await _unless_disconnected(request, work)
            break
        except BatcherClosed:  # the version was swapped out between lookup and submit
            if attempt == _SWAP_RETRIES - 1:
                raise
            servable = await manager.get(model, ref)
    return _response(request, metrics, servable, rows, top_k)


def _response(
    request: Request, metrics: Metrics, servable: Servable, rows: list[np.ndarray], top_k: int
) -> JSONResponse:
    """The `ClassifyResponse` body, built as plain JSON (the model's schema is for /docs)."""
    name, labels = servable.model.name, servable.model.labels
    probabilities = np.stack(rows)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    results = []
    for best, row in zip(order.tolist(), probabilities.tolist(), strict=True):
        metrics.count_prediction(name, labels[best[0]])
        results.append({"predictions": [{"label": labels[i], "confidence": row[i]} for i in best]})
    request.state.model = name
    request.state.version = servable.version
    return JSONResponse(
        {
            "model": name,
            "version": servable.version,
            "predictions": results[0]["predictions"],
            "results": results,
        }
    )


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work` in this task; if the client hangs up meanwhile, cancel it (so its images
    are never run) and raise ClientGone. One watcher task per request, no wrapper task."""
    task = asyncio.current_task()
    assert task is not None
    watching, gone = True, False

    def hang_up(watcher: asyncio.Future[None]) -> None:
        nonlocal gone
        if watching and not watcher.cancelled():
            watcher.exception()  # a receive error counts as gone too; mark it retrieved
            gone = True
            task.cancel()

    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    watcher.add_done_callback(hang_up)
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            task.uncancel()
            raise ClientGone() from None
        raise
    finally:
        watching = False
        watcher.cancel()


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
