"""Response bodies, declared so /docs shows what each endpoint returns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.api.tfserving.schemas import ModelVersionStatus


class Prediction(BaseModel):
    label: str = Field(examples=["Sneaker"])
    confidence: float = Field(ge=0, le=1, examples=[0.97])


class ImageResult(BaseModel):
    predictions: list[Prediction] = Field(description="top_k labels, most confident first")


class ClassifyResponse(BaseModel):
    model: str = Field(examples=["fashion"])
    version: int = Field(examples=[3])
    predictions: list[Prediction] = Field(description="the first image's predictions")
    results: list[ImageResult] = Field(description="one entry per image, in upload order")


class ErrorDetail(BaseModel):
    code: str = Field(examples=["unsupported_media_type"])
    message: str
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ModelSummary(BaseModel):
    name: str
    versions: list[int]
    aliases: dict[str, int]
    served_version: int | None = Field(
        default=None, description="the version /classify uses (None when not served here)"
    )
    served_alias: str | None = Field(default=None, description="alias followed; None = latest")
    loaded_versions: list[int] = Field(default_factory=list)
    runtime: str | None = Field(
        default=None,
        description="what runs served_version: onnxruntime or tensorflow (None when not served)",
        examples=["onnxruntime"],
    )
    model_version_status: list[ModelVersionStatus] = Field(
        default_factory=list, description="TF Serving's status of each version, newest first"
    )


class ModelList(BaseModel):
    models: list[ModelSummary]
    served_models: list[str] = Field(
        default_factory=list, description="the models this replica serves (TAGGER_MODELS)"
    )
    loaded_versions_total: int = Field(
        default=0, description="versions loaded over every model, served plus pinned"
    )
    max_total_loaded_versions: int | None = Field(
        default=None, description="TAGGER_MAX_TOTAL_LOADED_VERSIONS; None = unbounded"
    )


class VersionDetail(BaseModel):
    name: str
    version: int
    served: bool
    loaded: bool
    aliases: list[str]
    created_at: datetime
    labels: list[str]
    input: dict[str, Any]
    preprocessing: dict[str, Any]
    test_metrics: dict[str, Any]
    training: dict[str, Any]
    dataset: dict[str, Any] = Field(
        default_factory=dict,
        description="the data set it was trained and tested on: name, fingerprint, split sizes",
    )
    runtime: str | None = Field(
        default=None,
        description="what runs this version here: onnxruntime or tensorflow (None unless loaded)",
        examples=["onnxruntime"],
    )
    model_version_status: list[ModelVersionStatus] = Field(
        default_factory=list, description="TF Serving's status of this version"
    )


class Limits(BaseModel):
    """What one classify request may carry; larger work is split by the client."""

    max_images_per_request: int = Field(examples=[32])
    max_upload_bytes: int = Field(description="request body limit, bytes", examples=[10485760])


class Health(BaseModel):
    status: str = Field(examples=["ok"])


# The fallback fields, alike in a model's readiness and in the one-model form's top level.
_FALLBACK = "true while an older version is served because target_version failed to load"
FallbackFlag = Annotated[bool, Field(description=_FALLBACK)]
TargetVersion = Annotated[
    int | None, Field(description="the version the alias (or latest) points at")
]
FallbackReason = Annotated[str | None, Field(description="why target_version failed")]


class ModelReadiness(BaseModel):
    """What one model serves, and whether it stands in for a version that failed to load."""

    model: str
    version: int
    fallback: FallbackFlag = False
    target_version: TargetVersion = None
    fallback_reason: FallbackReason = None


class Readiness(BaseModel):
    """What is served. One model (TAGGER_MODEL_NAME): its fields at the top level. Several
    (TAGGER_MODELS): `models`, one entry each, and `fallback` true if any is a fallback."""

    status: str = Field(examples=["ready"])
    model: str | None = Field(default=None, description="the one model served (one-model form)")
    version: int | None = Field(default=None, description="its served version (one-model form)")
    fallback: FallbackFlag = False
    target_version: TargetVersion = None
    fallback_reason: FallbackReason = None
    models: list[ModelReadiness] | None = Field(
        default=None, description="each served model (several-model form)"
    )


_ERROR_DESCRIPTIONS = {
    400: "Bad request: empty, missing or undecodable image, bad base64, malformed or too deeply "
    "nested JSON, malformed multipart",
    401: "Missing or wrong API key",
    404: "Unknown model, version or alias, or a name or version that cannot exist "
    "(`invalid_name`, `invalid_version`)",
    405: "Method not allowed on this path",
    408: "The request body did not arrive in time",
    413: "Upload too large, too many images, too many JSON values or too many pixels",
    415: "Not a supported Content-Type or image format",
    422: "Invalid query parameter (e.g. top_k), or an image of extreme aspect ratio",
    431: "Request headers too large",
    503: "Overloaded (`overloaded`), not ready (`not_ready`) or over the pinned-version load "
    "budget (`version_load_budget`): retry after `Retry-After` seconds",
    504: "Deadline exceeded",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_HEADERS = {
    401: {
        "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}},
    },
    503: _RETRY_AFTER,
}


def error_responses(
    *statuses: int, body: type[BaseModel] = ErrorResponse
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses, each with the error `body` (this
    API's by default; OIP v2 and TF Serving pass theirs)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": body, "description": _ERROR_DESCRIPTIONS[status]}
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        responses[status] = entry
    return responses
