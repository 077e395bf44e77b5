"""OIP v2 bodies, declared so /docs shows them (the routes answer plain JSON of `oip.response`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from model_store.signature import INPUT_NAME, OUTPUT_NAME

EXTENSIONS = ["binary_tensor_data", "classification"]


class ServerMetadata(BaseModel):
    name: str = Field(examples=["cnn-tagger"])
    version: str = Field(examples=["0.1.0"])
    extensions: list[str] = Field(examples=[EXTENSIONS])


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str = Field(examples=["fashion"])
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks a variable dimension (the batch)")


class ModelMetadata(BaseModel):
    name: str = Field(examples=["fashion"])
    versions: list[str] = Field(description="the versions in the store", examples=[["1", "2"]])
    platform: str = Field(examples=["tensorflow_savedmodel"])
    inputs: list[TensorMetadata] = Field(
        examples=[[{"name": INPUT_NAME, "datatype": "UINT8", "shape": [-1, 28, 28, 1]}]]
    )
    outputs: list[TensorMetadata] = Field(
        examples=[[{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, 10]}]]
    )


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = Field(
        default=None, description="`binary_data_size` when the data follows the JSON header"
    )
    data: list[Any] | None = Field(default=None, description="row-major, when not binary")


class InferResponse(BaseModel):
    model_name: str = Field(examples=["fashion"])
    model_version: str = Field(examples=["3"])
    id: str | None = Field(default=None, description="the request's `id`, when it had one")
    outputs: list[ResponseOutput]


_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}

# The `$inference_request` of the spec as this server takes it: one input, `pixels`, either
# UINT8 pixels [N, H, W, C] at the model's input size or BYTES encoded image files [N].
INFER_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string", "description": "echoed in the response"},
        "parameters": {
            **_PARAMETERS,
            "properties": {
                "binary_data_output": {
                    "type": "boolean",
                    "description": "answer every output as binary data unless it says otherwise",
                }
            },
        },
        "inputs": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "datatype", "shape", "data"],
                "properties": {
                    "name": {"type": "string", "enum": [INPUT_NAME]},
                    "datatype": {
                        "type": "string",
                        "enum": ["UINT8", "BYTES"],
                        "description": "UINT8: pixels [N, H, W, C] at the model's input size; "
                        "BYTES: encoded image files (PNG, JPEG, ...), shape [N]",
                    },
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "parameters": {
                        **_PARAMETERS,
                        "properties": {
                            "binary_data_size": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "bytes of this tensor after the JSON header "
                                "(binary tensor data extension; then no `data`)",
                            }
                        },
                    },
                    "data": {
                        "type": "array",
                        "description": "row-major, flat or nested; BYTES elements as strings",
                    },
                },
            },
        },
        "outputs": {
            "type": "array",
            "maxItems": 1,
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "enum": [OUTPUT_NAME]},
                    "parameters": {
                        **_PARAMETERS,
                        "properties": {
                            "binary_data": {"type": "boolean"},
                            "classification": {
                                "type": "integer",
                                "minimum": 0,
                                "description": 'top-k as BYTES "score:index:label" strings',
                            },
                        },
                    },
                },
            },
        },
    },
}
