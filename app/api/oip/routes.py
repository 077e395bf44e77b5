"""Open Inference Protocol v2 over HTTP (KServe V2, Triton's HTTP API), for `tritonclient` and
every other client of those servers.

Health, server and model metadata, model readiness, and inference: one input `pixels`, either
UINT8 pixels `[N, H, W, C]` at the model's input size or BYTES encoded image files `[N]`
(decoded and preprocessed as an upload is), answered with the FP32 `probabilities` `[N, K]` or,
with `parameters.classification = k`, Triton's BYTES `"score:index:label"` strings. JSON
tensor data and Triton's binary tensor data extension both ways. Inference goes through the
same admission bound, batcher and metrics as every other protocol.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from app.api.deps import CoreDep
from app.api.disconnect import unless_disconnected
from app.api.errors import route_class
from app.api.oip.errors import STYLE, oip_error_responses
from app.api.oip.request import (
    InferRequest,
    InputTensor,
    RequestedOutput,
    decode_content,
    parse_header_length,
    parse_infer_request,
)
from app.api.oip.response import (
    OutputTensor,
    classification_strings,
    encode_infer_response,
    tensor_metadata,
)
from app.api.oip.schemas import (
    EXTENSIONS,
    INFER_REQUEST_SCHEMA,
    InferResponse,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from app.api.routes.params import ModelName, VersionNumber, reject_encoded_slash
from app.api.uploads import INLINE_JSON_MAX_BYTES
from app.core.decoding import Upload
from app.core.errors import InputProblem, InvalidInput, NotReady, from_store_error
from app.core.inference import Answer, Core
from app.core.model_manager import ModelManager
from app.core.servable import Servable
from model_store.errors import ModelStoreError
from model_store.names import LATEST
from model_store.schema import ModelMetadata as StoreMetadata
from model_store.signature import INPUT_NAME, OUTPUT_NAME

# Triton's platform names, by the runtime that answers for the version here.
PLATFORMS = {"tensorflow": "tensorflow_savedmodel", "onnxruntime": "onnxruntime_onnx"}
SERVER_NAME = "cnn-tagger"
HEADER_LENGTH = "Inference-Header-Content-Length"
_BINARY_MEDIA_TYPE = "application/octet-stream"

router = APIRouter(
    prefix="/v2",
    tags=["open inference protocol v2"],
    route_class=route_class(STYLE),
    dependencies=[Depends(reject_encoded_slash)],
    responses=oip_error_responses(401, 431),
)


# --- server ---------------------------------------------------------------------------------


@router.get("", response_model=ServerMetadata)
async def server_metadata(request: Request) -> ServerMetadata:
    """Server name, version and the extensions it speaks (binary tensor data, classification)."""
    return ServerMetadata(name=SERVER_NAME, version=request.app.version, extensions=EXTENSIONS)


@router.get("/health/live", response_model=ServerLive)
async def server_live() -> ServerLive:
    """200 while the process answers (it may still be loading the model)."""
    return ServerLive(live=True)


@router.get("/health/ready", response_model=ServerReady, responses=oip_error_responses(503))
async def server_ready(core: CoreDep) -> ServerReady:
    """200 once every served model has a version loaded and warmed; 503 until."""
    core.models.require_ready()
    return ServerReady(ready=True)


# --- models ---------------------------------------------------------------------------------

_MODEL_ERRORS = oip_error_responses(404, 503)


@router.get("/models/{model}", response_model=ModelMetadata, responses=oip_error_responses(404))
async def model_metadata(model: ModelName, core: CoreDep) -> ModelMetadata:
    """The served version's input and output tensors (while it loads, those of the version it
    will be), the platform and the store's versions."""
    return await _metadata(core, model, None)


@router.get(
    "/models/{model}/versions/{version}", response_model=ModelMetadata, responses=_MODEL_ERRORS
)
async def version_metadata(
    model: ModelName, version: VersionNumber, core: CoreDep
) -> ModelMetadata:
    """One version's input and output tensors."""
    return await _metadata(core, model, int(version))


@router.get("/models/{model}/ready", response_model=ModelReady, responses=_MODEL_ERRORS)
async def model_ready(model: ModelName, core: CoreDep) -> ModelReady:
    """200 once the served version is loaded; 503 until."""
    _check_served(core, model).require_served()
    return ModelReady(name=model, ready=True)


@router.get(
    "/models/{model}/versions/{version}/ready", response_model=ModelReady, responses=_MODEL_ERRORS
)
async def version_ready(model: ModelName, version: VersionNumber, core: CoreDep) -> ModelReady:
    """200 when this version is loaded; 503 when it is in the store but not loaded (an
    inference request for it loads it)."""
    manager = _check_served(core, model)
    number = int(version)
    if number not in manager.loaded_versions:
        await _store_call(manager.store.metadata, model, number)  # 404 if there is none
        raise NotReady(
            f"version {number} of model {model!r} is not loaded; an inference request for it "
            "loads it",
            core.settings.retry_after_s,
        )
    return ModelReady(name=model, ready=True)


def _check_served(core: Core, model: str) -> ModelManager:
    """The manager of `model`; NotFound when it is not served here."""
    return core.models.manager(model)


async def _store_call(function: Any, *args: Any) -> Any:
    try:
        return await asyncio.to_thread(function, *args)
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc


async def _metadata(core: Core, model: str, version: int | None) -> ModelMetadata:
    manager = _check_served(core, model)
    if version is None and manager.served is not None:
        metadata = manager.served.model.metadata
    else:  # a pinned version, or the one that will be served while it still loads
        number = version
        if number is None:
            number = await _store_call(manager.store.resolve, model, manager.alias or LATEST)
        metadata = await _store_call(manager.store.metadata, model, number)
    versions = await _store_call(manager.store.versions, model)
    runtime = manager.runtime_of(metadata.version) or _expected_runtime(core, metadata)
    return ModelMetadata.model_validate(_metadata_json(model, metadata, versions, runtime))


def _expected_runtime(core: Core, metadata: StoreMetadata) -> str:
    """The runtime a version not loaded here would get (TAGGER_RUNTIME, model.onnx present)."""
    if core.settings.runtime == "tensorflow" or "model.onnx" not in metadata.files:
        return "tensorflow"
    return "onnxruntime"


def _metadata_json(
    model: str, metadata: StoreMetadata, versions: list[int], runtime: str
) -> dict[str, Any]:
    spec = metadata.input
    return {
        "name": model,
        "versions": [str(number) for number in versions],
        "platform": PLATFORMS[runtime],
        "inputs": [
            tensor_metadata(INPUT_NAME, "UINT8", (-1, spec.height, spec.width, spec.channels))
        ],
        "outputs": [tensor_metadata(OUTPUT_NAME, "FP32", (-1, len(metadata.labels)))],
    }


# --- inference ------------------------------------------------------------------------------

_INFER_ROUTE: dict[str, Any] = {
    "response_model": InferResponse,
    "responses": {
        200: {
            "description": "The outputs: JSON, or with binary outputs the JSON header "
            f"({HEADER_LENGTH} bytes) followed by the binary tensors",
            "content": {_BINARY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                HEADER_LENGTH: {
                    "description": "bytes of JSON before the binary tensors (binary outputs only)",
                    "schema": {"type": "integer", "minimum": 0},
                }
            },
        },
        **oip_error_responses(400, 404, 413, 415, 422, 503, 504),
    },
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "description": "An `$inference_request`. With the binary tensor data extension the "
            f"body is this JSON ({HEADER_LENGTH} bytes) followed by the binary tensors.",
            "content": {"application/json": {"schema": INFER_REQUEST_SCHEMA}},
        }
    },
}


@router.post("/models/{model}/infer", **_INFER_ROUTE)
async def infer(request: Request, model: ModelName, core: CoreDep) -> Response:
    """Run the served version."""
    return await _infer(request, core, model, None)


@router.post("/models/{model}/versions/{version}/infer", **_INFER_ROUTE)
async def infer_version(
    request: Request, model: ModelName, version: VersionNumber, core: CoreDep
) -> Response:
    """Run one pinned version."""
    return await _infer(request, core, model, int(version))


async def _infer(request: Request, core: Core, model: str, ref: int | None) -> Response:
    # Requests past TAGGER_MAX_IN_FLIGHT_REQUESTS never get here (app.api.admission refuses them).
    deadline = core.deadline()
    servable = await core.servable(model, ref)
    parsed = await _parse(request, core, servable)
    tensor = _the_input(parsed)
    outputs = _requested_outputs(parsed)
    request.state.model = servable.model.name
    request.state.version = servable.version
    watch = lambda work: unless_disconnected(request, work)  # noqa: E731
    if tensor.datatype == "UINT8":
        assert not isinstance(tensor.data, list)
        request.state.images = len(tensor.data) if tensor.data.ndim else 0
        answer = await core.infer_pixels(
            model, ref, tensor.data, deadline, servable=servable, watch=watch
        )
    else:
        uploads = _uploads(tensor, core.settings.max_images_per_request)
        request.state.images = len(uploads)
        answer = await core.classify_encoded(
            model, ref, uploads, deadline, servable=servable, watch=watch
        )
    return _response(parsed, outputs, answer)


async def _parse(request: Request, core: Core, servable: Servable) -> InferRequest:
    settings = core.settings
    body = await request.body()  # buffered and bounded by app.api.admission
    json_length = parse_header_length(request.headers.get(HEADER_LENGTH))
    body = decode_content(body, request.headers.get("content-encoding"), settings.max_upload_bytes)
    pixels_per_image = math.prod(servable.model.input_shape)

    def parse() -> InferRequest:
        return parse_infer_request(
            body,
            json_length,
            max_elements=settings.max_images_per_request * pixels_per_image,
            max_json_values=settings.max_json_values,
            max_json_depth=settings.max_json_depth,
            expected=_EXPECTED_INPUTS,
        )

    if len(body) <= INLINE_JSON_MAX_BYTES:
        return parse()
    return await asyncio.to_thread(parse)


# The one input every version takes: UINT8 pixels or BYTES encoded images.
_EXPECTED_INPUTS = {INPUT_NAME: ("UINT8", "BYTES")}


def _the_input(parsed: InferRequest) -> InputTensor:
    names = [tensor.name for tensor in parsed.inputs]
    if names != [INPUT_NAME]:
        raise InvalidInput(
            f"expected one input {INPUT_NAME!r} (UINT8 pixels or BYTES encoded images), "
            f"got {', '.join(repr(name[:40]) for name in names[:5])}",
            "unknown_input",
        )
    tensor = parsed.inputs[0]
    if tensor.datatype not in ("UINT8", "BYTES"):
        raise InvalidInput(
            f"input {INPUT_NAME!r}: expected datatype UINT8 (pixels) or BYTES (encoded images), "
            f"got {tensor.datatype}",
            "invalid_datatype",
        )
    return tensor


def _uploads(tensor: InputTensor, max_images: int) -> list[Upload]:
    if len(tensor.shape) != 1:
        raise InvalidInput(
            f"input {INPUT_NAME!r}: BYTES encoded images take shape [N], got {list(tensor.shape)}",
            "invalid_shape",
        )
    assert isinstance(tensor.data, list)
    if not tensor.data:
        raise InvalidInput(f"input {INPUT_NAME!r} holds no image", "missing_input")
    if len(tensor.data) > max_images:
        raise InvalidInput(
            f"input {INPUT_NAME!r}: {len(tensor.data)} images in one request; "
            f"the limit is {max_images}",
            "too_many_images",
            InputProblem.TOO_LARGE,
        )
    return [Upload(data, f"{INPUT_NAME}[{index}]") for index, data in enumerate(tensor.data)]


def _requested_outputs(parsed: InferRequest) -> list[RequestedOutput]:
    for output in parsed.outputs:
        if output.name != OUTPUT_NAME:
            raise InvalidInput(
                f"unknown output {output.name[:40]!r}; the model has output {OUTPUT_NAME!r}",
                "unknown_output",
            )
    return parsed.outputs or [RequestedOutput(OUTPUT_NAME)]


def _response(parsed: InferRequest, requested: list[RequestedOutput], answer: Answer) -> Response:
    probabilities = answer.probabilities
    labels = answer.servable.model.labels
    outputs = []
    for output in requested:
        binary = parsed.wants_binary(output)
        if output.classification is not None:
            data = classification_strings(probabilities, output.classification, labels)
            outputs.append(OutputTensor(output.name, "BYTES", data.shape, data, binary))
        else:
            outputs.append(
                OutputTensor(output.name, "FP32", probabilities.shape, probabilities, binary)
            )
    body, json_length = encode_infer_response(
        answer.servable.model.name, str(answer.servable.version), parsed.id, outputs
    )
    if json_length is None:
        return Response(body, media_type=JSONResponse.media_type)
    return Response(body, media_type=_BINARY_MEDIA_TYPE, headers={HEADER_LENGTH: str(json_length)})
