"""TF Serving's response bodies, declared so /docs (and schema checks) know their shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


class ErrorMessage(BaseModel):
    """The error body of TF Serving (and of OIP v2): the message alone."""

    error: str = Field(examples=["Servable not found for request: Latest(half)"])


class StatusProto(BaseModel):
    error_code: str = Field(examples=["OK"], description="a tensorflow.error.Code name")
    error_message: str = Field(examples=[""])


class ModelVersionStatus(BaseModel):
    version: str = Field(examples=["3"], description="an int64, so a JSON string")
    state: Literal["START", "LOADING", "AVAILABLE", "UNLOADING", "END"]
    status: StatusProto


class ModelStatus(BaseModel):
    """TF Serving's `GetModelStatusResponse`."""

    model_version_status: list[ModelVersionStatus]


class ModelMetadata(BaseModel):
    """TF Serving's `GetModelMetadataResponse`: the SavedModel's signature defs."""

    model_spec: dict[str, str] = Field(
        examples=[{"name": "fashion", "signature_name": "", "version": "3"}]
    )
    metadata: dict[str, Any]


class PredictResponse(BaseModel):
    """`predictions` for a row-format (`instances`) request, `outputs` for a columnar one."""

    predictions: list[list[float]] | None = Field(default=None, description="row format")
    outputs: list[list[float]] | None = Field(default=None, description="columnar format")


# [label, score]: a pair, declared as a list of two (a tuple's `prefixItems` is not OpenAPI 3.0).
LabelScore = Annotated[list[str | float], Field(min_length=2, max_length=2)]


class ClassificationResponse(BaseModel):
    """TF Serving's `ClassificationResponse` in JSON."""

    results: list[list[LabelScore]] = Field(
        description="per example, [label, score] for every label, in the model's label order",
        examples=[[[["T-shirt/top", 0.02], ["Trouser", 0.97]]]],
    )
