"""How OIP v2 answers a failure: `{"error": "<message>"}` (the spec's `$inference_error_response`),
with the status `app.api.errors.serving_status` gives the core's error."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.api.errors import ErrorStyle, message_body

STYLE = ErrorStyle("oip", message_body)


class OipError(BaseModel):
    """The OIP v2 error body."""

    error: str = Field(examples=["input 'pixels': expected shape [-1, 28, 28, 1], got [2, 28, 28]"])


_DESCRIPTIONS = {
    400: "Malformed request: bad JSON, wrong datatype or shape, element count or binary size "
    "that does not match the shape, a value that does not fit its datatype, an undecodable image",
    401: "Missing or wrong API key",
    404: "Unknown model or version, or a name or version that cannot exist",
    413: "Body too large, too many tensor elements, images or JSON values",
    415: "Unsupported datatype, image format or shared memory",
    422: "An image of extreme aspect ratio",
    431: "Request headers too large",
    503: "Overloaded or not ready: retry after `Retry-After` seconds",
    504: "Deadline exceeded",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    503: {
        "Retry-After": {
            "description": "seconds to wait before retrying",
            "schema": {"type": "integer", "minimum": 0},
        }
    },
}


def oip_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these statuses, each with the OIP error body."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": OipError, "description": _DESCRIPTIONS[status]}
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        responses[status] = entry
    return responses
