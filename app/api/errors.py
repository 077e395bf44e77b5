"""API errors and handlers: each protocol answers a failure in its own error body.

`ApiError` is for the edge's own refusals (upload parsing, auth, parameters); the serving
core's `ServingError`s are mapped to statuses here, in `serving_status`. Which body a failure
gets is the `ErrorStyle` of the route that failed (`ProtocolRoute`), or of its path prefix for
a path no route matches: this service's own API answers
`{"error": {code, message, request_id}}`; OIP v2 and TF Serving answer `{"error": message}`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

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
    """This service's own error body (the request id is also in the X-Request-Id header)."""
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def message_body(code: str, message: str, request_id: str) -> dict[str, Any]:
    """The error body of OIP v2 and TF Serving: the message alone."""
    return {"error": message}


@dataclass(frozen=True, slots=True)
class ErrorStyle:
    """How one protocol answers a failure: its body, from (code, message, request id)."""

    name: str
    body: Callable[[str, str, str], dict[str, Any]]


TAGGER_ERRORS = ErrorStyle("tagger", error_body)


_PREFIXES = "error_style_prefixes"


class ProtocolRoute(APIRoute):
    """A route of one protocol: its failures answer in that protocol's `error_style`."""

    error_style: ErrorStyle = TAGGER_ERRORS


def route_class(style: ErrorStyle) -> type[ProtocolRoute]:
    """The route class a protocol's router uses (`APIRouter(route_class=...)`)."""
    return type(f"{style.name.title()}Route", (ProtocolRoute,), {"error_style": style})


def style_of(scope: Scope) -> ErrorStyle:
    """The error style of the request: its route's, else its path prefix's, else ours."""
    style = getattr(scope.get("route"), "error_style", None)
    if style is not None:
        return style
    app = scope.get("app")
    prefixes: dict[str, ErrorStyle] = getattr(app.state, _PREFIXES, {}) if app else {}
    path = scope.get("path", "")
    for prefix, prefixed in prefixes.items():
        if path == prefix or path.startswith(prefix + "/"):
            return prefixed
    return TAGGER_ERRORS


def error_json(
    scope: Scope,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The error response of the request's protocol (also records `code` for the access log)."""
    state = scope.setdefault("state", {})
    state["error_code"] = code
    body = style_of(scope).body(code, message, state.get("request_id", "") or "")
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return error_json(request.scope, status, code, message, headers)


def api_error_response(request: Request, exc: ApiError | ServingError) -> JSONResponse:
    """The response to an edge refusal or a serving-core error (what the handlers answer)."""
    if isinstance(exc, ApiError):
        return error_response(request, exc.status, exc.code, exc.message, exc.headers)
    status, headers = serving_status(exc)
    return error_response(request, status, exc.code, exc.message, headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return api_error_response(request, exc)


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
    return api_error_response(request, exc)


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


def install_error_handlers(app: FastAPI, prefixes: dict[str, ErrorStyle] | None = None) -> None:
    """Answer every failure in its protocol's error body (FastAPI's default 422 body included);
    `prefixes` name the style of paths under a prefix that match no route (e.g. `/v2`)."""
    setattr(app.state, _PREFIXES, dict(prefixes or {}))
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ServingError, _serving_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
