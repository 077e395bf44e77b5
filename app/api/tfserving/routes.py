"""TensorFlow Serving's REST API: `:predict`, `:classify`, model status and metadata.

Paths as TF Serving's (`/v1/models/{m}[/versions/{v} | /labels/{alias}]:predict`, ...); the
status of `/v1/models/{m}` and `/versions/{v}` is in this service's own answers there
(`model_version_status`, app.api.routes.models), the other GETs are here. `:classify` (colon)
never meets this API's `/classify` (slash). Requests go through the same admission bound,
batcher and metrics as every other protocol's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.deps import CoreDep
from app.api.disconnect import unless_disconnected
from app.api.errors import route_class
from app.api.json_body import JsonLimits
from app.api.openapi import MAX_ITEMS_SETTING
from app.api.routes.params import AliasName, ModelName, VersionNumber, reject_encoded_slash
from app.api.schemas import error_responses
from app.api.tfserving.errors import STYLE
from app.api.tfserving.metadata import model_metadata
from app.api.tfserving.requests import json_limits, parse_classify, parse_json, parse_predict
from app.api.tfserving.responses import encode_classify, encode_predict
from app.api.tfserving.schemas import (
    ClassificationResponse,
    ErrorMessage,
    ModelMetadata,
    ModelStatus,
    PredictResponse,
)
from app.api.tfserving.status import status_body
from app.api.uploads import INLINE_JSON_MAX_BYTES
from app.core.decoding import Upload
from app.core.errors import InvalidInput, from_store_error
from app.core.inference import Answer, Core
from model_store.errors import ModelStoreError
from model_store.signature import INPUT_NAME

T = TypeVar("T")
Ref = int | str | None

router = APIRouter(
    tags=["tensorflow-serving"],
    route_class=route_class(STYLE),
    dependencies=[Depends(reject_encoded_slash)],
    responses=error_responses(401, 431, body=ErrorMessage),
)
_INFER_ERRORS = error_responses(400, 404, 408, 413, 415, 422, 503, 504, body=ErrorMessage)
_GET_ERRORS = error_responses(404, 503, body=ErrorMessage)

# Request bodies as /docs shows them and schema checks draw them: the `{"b64": ...}` forms.
# Pixel lists (`[H][W][C]` integers 0-255 per instance) are accepted too; their shape depends
# on the version, so they are described, not declared.
_B64: dict[str, Any] = {
    "type": "object",
    "required": ["b64"],
    "properties": {"b64": {"type": "string", "format": "byte", "minLength": 4}},
    "additionalProperties": False,
}
_NAMED_B64 = {
    "type": "object",
    "required": [INPUT_NAME],
    "properties": {INPUT_NAME: _B64},
    "additionalProperties": False,
}
_SIGNATURE = {"type": "string", "enum": ["", "serving_default"]}


def _images(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "array",
        "items": item,
        "minItems": 1,
        MAX_ITEMS_SETTING: "max_images_per_request",
    }


_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "description": "Row format (`instances`) or columnar (`inputs`). Each instance is an "
        'encoded image `{"b64": ...}` (optionally keyed by the input name, `pixels`) or a '
        "[height][width][channels] nested list of integers 0-255 at the model's input size.",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["instances"],
                            "properties": {
                                "signature_name": _SIGNATURE,
                                "instances": _images({"oneOf": [_B64, _NAMED_B64]}),
                            },
                            "not": {"required": ["inputs"]},
                        },
                        {
                            "type": "object",
                            "required": ["inputs"],
                            "properties": {
                                "signature_name": _SIGNATURE,
                                "inputs": {
                                    "oneOf": [
                                        _images(_B64),
                                        {
                                            "type": "object",
                                            "required": [INPUT_NAME],
                                            "properties": {INPUT_NAME: _images(_B64)},
                                        },
                                    ]
                                },
                            },
                            "not": {"required": ["instances"]},
                        },
                    ]
                }
            }
        },
    }
}
_CLASSIFY_BODY = {
    "requestBody": {
        "required": True,
        "description": "One encoded image per example, in feature `image` (or `pixels`, or the "
        "example's only binary feature); `context` features are merged into every example.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["examples"],
                    "properties": {
                        "signature_name": _SIGNATURE,
                        "context": {"type": "object"},
                        "examples": _images(
                            {
                                "type": "object",
                                "required": ["image"],
                                "properties": {
                                    "image": {
                                        "oneOf": [
                                            _B64,
                                            {
                                                "type": "array",
                                                "items": _B64,
                                                "minItems": 1,
                                                "maxItems": 1,
                                            },
                                        ]
                                    }
                                },
                            }
                        ),
                    },
                }
            }
        },
    }
}
_PREDICT = {
    "response_model": PredictResponse,
    "response_model_exclude_none": True,
    "responses": _INFER_ERRORS,
    "openapi_extra": _PREDICT_BODY,
}
_CLASSIFY = {
    "response_model": ClassificationResponse,
    "responses": _INFER_ERRORS,
    "openapi_extra": _CLASSIFY_BODY,
}
_METADATA = {"response_model": ModelMetadata, "responses": _GET_ERRORS}


# --- :predict ---------------------------------------------------------------------------


@router.post("/v1/models/{model}:predict", **_PREDICT)
async def tfserving_predict(request: Request, model: ModelName, core: CoreDep) -> JSONResponse:
    """Run the served version on images or pixels (TF Serving's Predict)."""
    return await _predict(request, core, model, None)


@router.post("/v1/models/{model}/versions/{version}:predict", **_PREDICT)
async def tfserving_predict_version(
    request: Request, model: ModelName, version: VersionNumber, core: CoreDep
) -> JSONResponse:
    """Predict with one pinned version."""
    return await _predict(request, core, model, int(version))


@router.post("/v1/models/{model}/labels/{alias}:predict", **_PREDICT)
async def tfserving_predict_alias(
    request: Request, model: ModelName, alias: AliasName, core: CoreDep
) -> JSONResponse:
    """Predict with the version an alias points at now."""
    return await _predict(request, core, model, alias)


async def _predict(request: Request, core: Core, model: str, ref: Ref) -> JSONResponse:
    deadline = core.deadline()
    servable = await core.servable(model, ref)
    shape = servable.model.input_shape
    max_items = core.settings.max_images_per_request
    parsed = await _parse(
        core,
        await request.body(),
        json_limits(max_items, shape),
        lambda document: parse_predict(
            document, input_name=INPUT_NAME, input_shape=shape, max_items=max_items
        ),
    )
    request.state.images = parsed.count
    watch = _watch(request)
    if parsed.images is not None:
        key = parsed.format.value
        uploads = [Upload(data, f"{key}[{i}]") for i, data in enumerate(parsed.images)]
        answer = await core.classify_encoded(
            model, ref, uploads, deadline, servable=servable, watch=watch
        )
    else:
        assert parsed.pixels is not None
        answer = await core.infer_pixels(
            model, ref, parsed.pixels, deadline, servable=servable, watch=watch
        )
    _note(request, answer)
    return JSONResponse(encode_predict(answer.probabilities, parsed.format))


# --- :classify --------------------------------------------------------------------------


@router.post("/v1/models/{model}:classify", **_CLASSIFY)
async def tfserving_classify(request: Request, model: ModelName, core: CoreDep) -> JSONResponse:
    """Classify images with the served version (TF Serving's Classify): every label's score."""
    return await _classify(request, core, model, None)


@router.post("/v1/models/{model}/versions/{version}:classify", **_CLASSIFY)
async def tfserving_classify_version(
    request: Request, model: ModelName, version: VersionNumber, core: CoreDep
) -> JSONResponse:
    """Classify with one pinned version."""
    return await _classify(request, core, model, int(version))


@router.post("/v1/models/{model}/labels/{alias}:classify", **_CLASSIFY)
async def tfserving_classify_alias(
    request: Request, model: ModelName, alias: AliasName, core: CoreDep
) -> JSONResponse:
    """Classify with the version an alias points at now."""
    return await _classify(request, core, model, alias)


async def _classify(request: Request, core: Core, model: str, ref: Ref) -> JSONResponse:
    deadline = core.deadline()
    servable = await core.servable(model, ref)
    settings = core.settings
    max_items = settings.max_images_per_request
    limits = JsonLimits(settings.max_json_depth, settings.max_json_values, max_items)
    images = await _parse(
        core,
        await request.body(),
        limits,
        lambda document: parse_classify(document, max_items=max_items),
    )
    request.state.images = len(images)
    uploads = [Upload(data, f"examples[{i}]") for i, data in enumerate(images)]
    answer = await core.classify_encoded(
        model, ref, uploads, deadline, servable=servable, watch=_watch(request)
    )
    _note(request, answer)
    return JSONResponse(encode_classify(answer.probabilities, answer.servable.model.labels))


# --- status and metadata ----------------------------------------------------------------


@router.get("/v1/models/{model}/labels/{alias}", response_model=ModelStatus, responses=_GET_ERRORS)
async def tfserving_alias_status(
    model: ModelName, alias: AliasName, core: CoreDep
) -> dict[str, Any]:
    """TF Serving's model status of the version an alias points at."""
    version = await _version(core, model, alias)
    return status_body(core.models.find(model), model, [version])


@router.get("/v1/models/{model}/metadata", **_METADATA)
async def tfserving_metadata(model: ModelName, core: CoreDep) -> dict[str, Any]:
    """The served version's signature defs, as TF Serving's GetModelMetadata prints them."""
    return await _metadata(core, model, None)


@router.get("/v1/models/{model}/versions/{version}/metadata", **_METADATA)
async def tfserving_version_metadata(
    model: ModelName, version: VersionNumber, core: CoreDep
) -> Any:
    """One version's signature defs."""
    return await _metadata(core, model, int(version))


@router.get("/v1/models/{model}/labels/{alias}/metadata", **_METADATA)
async def tfserving_alias_metadata(model: ModelName, alias: AliasName, core: CoreDep) -> Any:
    """The signature defs of the version an alias points at."""
    return await _metadata(core, model, alias)


async def _metadata(core: Core, model: str, ref: Ref) -> dict[str, Any]:
    version = await _version(core, model, ref)
    store = core.models.store
    try:
        metadata = await asyncio.to_thread(store.metadata, model, version)
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc
    spec = metadata.input
    shape = (spec.height, spec.width, spec.channels)
    return model_metadata(model, version, shape, len(metadata.labels))


async def _version(core: Core, model: str, ref: Ref) -> int:
    """The version `ref` names (None: the served one), without loading it."""
    manager = core.models.manager(model)
    if ref is None:
        return manager.require_served().version
    try:
        return await asyncio.to_thread(manager.store.resolve, model, ref)
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc


# --- helpers ----------------------------------------------------------------------------


async def _parse(core: Core, body: bytes, limits: JsonLimits, read: Callable[[object], T]) -> T:
    """`read` of the JSON `body`, on a thread when the body is large; refusals are counted."""

    def parse() -> T:
        return read(parse_json(body, limits))

    try:
        if len(body) <= INLINE_JSON_MAX_BYTES:
            return parse()
        return await asyncio.to_thread(parse)
    except InvalidInput as exc:
        core.metrics.images_rejected.labels(exc.code).inc()
        raise


def _watch(request: Request) -> Callable[[Any], Any]:
    return lambda work: unless_disconnected(request, work)


def _note(request: Request, answer: Answer) -> None:
    """What the access log records of the request."""
    request.state.model = answer.servable.model.name
    request.state.version = answer.servable.version
