"""POST an image (or several), get the top-k labels with confidences."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.api.deps import CoreDep
from app.api.disconnect import unless_disconnected
from app.api.errors import ApiError
from app.api.openapi import MAX_ITEMS_SETTING, MAXIMUM_IS_LABEL_COUNT
from app.api.routes.params import AliasName, ModelName, VersionNumber, reject_encoded_slash
from app.api.schemas import ClassifyResponse, error_responses
from app.api.uploads import read_uploads
from app.core.decoding import Upload
from app.core.inference import Answer, Core

router = APIRouter(
    prefix="/v1/models/{model}",
    tags=["classify"],
    dependencies=[Depends(reject_encoded_slash)],
    responses=error_responses(400, 404, 408, 413, 415, 422, 431, 503, 504),
)

# The bounds are declared for the schema only: the check (422 `invalid_top_k`) knows the
# number of labels of the version that answers, the schema that of the served version.
TopK = Annotated[
    int,
    Query(
        description="labels per image, 1..number of labels",
        json_schema_extra={"minimum": 1, MAXIMUM_IS_LABEL_COUNT: True},
    ),
]


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
async def classify(request: Request, model: ModelName, core: CoreDep, top_k: TopK = 5) -> Response:
    """Classify with the served version (the configured alias, or the latest)."""
    return await _classify(request, core, model, None, top_k)


@router.post("/versions/{version}/classify", **_ROUTE)
async def classify_version(
    request: Request,
    model: ModelName,
    version: VersionNumber,
    core: CoreDep,
    top_k: TopK = 5,
) -> Response:
    """Classify with one pinned version."""
    return await _classify(request, core, model, int(version), top_k)


@router.post("/labels/{alias}/classify", **_ROUTE)
async def classify_alias(
    request: Request, model: ModelName, alias: AliasName, core: CoreDep, top_k: TopK = 5
) -> Response:
    """Classify with the version an alias (e.g. `stable`, `canary`) points at now."""
    return await _classify(request, core, model, alias, top_k)


async def _classify(
    request: Request, core: Core, model: str, ref: int | str | None, top_k: int
) -> Response:
    return await answer_classify(request, core, model, ref, top_k)


async def answer_classify(
    request: Request,
    core: Core,
    model: str,
    ref: int | str | None,
    top_k: int,
    uploads: list[Upload] | None = None,
) -> Response:
    """The classify answer, from `uploads` when the caller has read them already
    (app.api.classify_fast_path), else from the request's body."""
    # Requests past TAGGER_MAX_IN_FLIGHT_REQUESTS never get here (app.api.admission refuses them).
    deadline = core.deadline()
    servable = await core.servable(model, ref)
    labels = servable.model.labels
    if not 1 <= top_k <= len(labels):
        raise ApiError(
            422,
            "invalid_top_k",
            f"top_k must be between 1 and {len(labels)} (the number of labels); got {top_k}",
        )
    if uploads is None:
        uploads = await read_uploads(request, core.settings, core.metrics)
    request.state.images = len(uploads)
    answer = await core.classify_encoded(
        model,
        ref,
        uploads,
        deadline,  # the request's own clock, started when it arrived
        servable=servable,
        watch=lambda work: unless_disconnected(request, work),
    )
    return _response(request, answer, top_k)


def _response(request: Request, answer: Answer, top_k: int) -> Response:
    """The `ClassifyResponse` body, built as plain JSON (the model's schema is for /docs) and
    encoded by orjson, much cheaper per request than the standard library's encoder (the same
    shortest round-trip digits)."""
    servable = answer.servable
    name, labels = servable.model.name, servable.model.labels
    probabilities = answer.probabilities
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    results = [
        {"predictions": [{"label": labels[i], "confidence": row[i]} for i in best]}
        for best, row in zip(order.tolist(), probabilities.tolist(), strict=True)
    ]
    request.state.model = name
    request.state.version = servable.version
    body = {
        "model": name,
        "version": servable.version,
        "predictions": results[0]["predictions"],
        "results": results,
    }
    return Response(orjson.dumps(body), media_type="application/json")
