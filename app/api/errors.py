"""API errors and handlers: every failure answers `{"error": {code, message, request_id}}`.

`ApiError` is for the edge's own refusals (upload parsing, auth, parameters); the serving
core's `ServingError`s are mapped to statuses here, in `serving_status`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.routes.params import PATH_PARAMETER_ERRORS
from app.core.errors import (
    DeadlineExceeded,
    InputProblem,
    InvalidInput,
    ModelFailure,
    NotFound,
    NotReady,
    Overloaded,
    ServingError,
)

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


_INPUT_STATUS = {
    InputProblem.MALFORMED: 400,
    InputProblem.TOO_LARGE: 413,
    InputProblem.UNSUPPORTED: 415,
    InputProblem.OUT_OF_RANGE: 422,
}


class ApiError(Exception):
    """An edge failure with the HTTP status, machine-readable code and message the client gets."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class ClientGone(Exception):
    """The client disconnected before its result was ready; nothing is sent back."""


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def error_body(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    request.state.error_code = code
    return JSONResponse(
        error_body(code, message, request_id_of(request)), status_code=status, headers=headers
    )


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.code, exc.message, exc.headers)


def serving_status(exc: ServingError) -> tuple[int, dict[str, str]]:
    """The HTTP status and headers of a serving-core error (any protocol over HTTP may use it)."""
    if isinstance(exc, NotFound):
        return 404, {}
    if isinstance(exc, NotReady | Overloaded):
        return 503, {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, DeadlineExceeded):
        return 504, {}
    if isinstance(exc, InvalidInput):
        return _INPUT_STATUS[exc.problem], {}
    if not isinstance(exc, ModelFailure):
        logger.error("serving error of unmapped type %s", type(exc).__name__)
    return 500, {}


async def _serving_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServingError)
    status, headers = serving_status(exc)
    return error_response(request, status, exc.code, exc.message, headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route for {request.method} {request.url.path}; see /docs"
    return error_response(request, exc.status_code, code, message, dict(exc.headers or {}))


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{location}: {error.get('msg', 'invalid')}" if location else error.get("msg", "")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    path_errors = [error for error in errors if tuple(error.get("loc", ()))[:1] == ("path",)]
    if path_errors:  # a path that names nothing that can exist: 404, as for an unknown name
        return _invalid_path_parameter(request, path_errors[0])
    message = "; ".join(_describe(error) for error in errors) or "invalid request"
    return error_response(request, 422, "invalid_request", message)


def _invalid_path_parameter(request: Request, error: dict[str, Any]) -> JSONResponse:
    name = str(error["loc"][-1])
    code, rule = PATH_PARAMETER_ERRORS.get(name, ("invalid_name", "see /openapi.json"))
    value = str(error.get("input", ""))
    shown = value if len(value) <= 40 else f"{value[:40]}... ({len(value)} characters)"
    return error_response(request, 404, code, f"invalid {name} {shown!r}: {rule}")


def install_error_handlers(app: FastAPI) -> None:
    """Make every 4xx the same JSON shape (FastAPI's default 422 body included)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ServingError, _serving_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
