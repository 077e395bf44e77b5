"""The OpenAPI schema, completed with what depends on the settings and the served model: the
image-count limit, top_k's maximum (the number of labels), which operations need the API key
(401) and which are open."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.api.deps import models_of
from app.api.schemas import error_responses
from app.config import Settings

# Placed on an array schema in a route's `openapi_extra`: replaced by `maxItems: <setting>`.
MAX_ITEMS_SETTING = "x-max-items-setting"
# Placed on a parameter's schema: replaced by `maximum: <labels of the served version>` (the
# most labels of any served model when several are served).
MAXIMUM_IS_LABEL_COUNT = "x-maximum-is-label-count"
_ERROR_SCHEMA = "#/components/schemas/ErrorResponse"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def settings_openapi(app: FastAPI, settings: Settings) -> Callable[[], dict[str, Any]]:
    """A replacement for `app.openapi` that states the limits `settings` and the served model
    set. Rebuilt when FastAPI regenerates its schema or the served number of labels changes."""
    generate = app.openapi
    cache: dict[tuple[int, int | None], dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        base = generate()
        served = [m.served for m in models_of(app).managers if m.served is not None]
        labels = max((len(s.model.labels) for s in served), default=None)
        key = (id(base), labels)
        if key not in cache:
            schema = copy.deepcopy(base)
            _state_limits(schema, settings, labels)
            _state_auth(schema, settings)
            _drop_default_validation_errors(schema)
            cache.clear()
            cache[key] = schema
        return cache[key]

    return openapi


def _state_limits(node: Any, settings: Settings, labels: int | None) -> None:
    if isinstance(node, dict):
        name = node.pop(MAX_ITEMS_SETTING, None)
        if name is not None:
            node["maxItems"] = getattr(settings, name)
        if node.pop(MAXIMUM_IS_LABEL_COUNT, None) and labels is not None:
            node["maximum"] = labels
        for value in node.values():
            _state_limits(value, settings, labels)
    elif isinstance(node, list):
        for value in node:
            _state_limits(value, settings, labels)


def _drop_default_validation_errors(schema: dict[str, Any]) -> None:
    """FastAPI adds a 422 `HTTPValidationError` to every operation with parameters; this
    service answers invalid path parameters with 404 and declares its own 422s."""
    for item in schema.get("paths", {}).values():
        for method in _METHODS:
            responses = item.get(method, {}).get("responses", {})
            if "HTTPValidationError" in str(responses.get("422", {})):
                del responses["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)


def _state_auth(schema: dict[str, Any], settings: Settings) -> None:
    """With a key: 401 on every guarded operation, none on exempt paths. Without: no security."""
    unauthorized = error_responses(401)[401]
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if settings.api_key is None or path in settings.auth_exempt_paths:
                operation.pop("security", None)
                operation.get("responses", {}).pop("401", None)
            elif "401" not in operation.setdefault("responses", {}):  # else its own error body
                operation["responses"]["401"] = {
                    "description": unauthorized["description"],
                    "headers": unauthorized["headers"],
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ErrorResponse"}
                        }
                    },
                }
    if settings.api_key is None:
        schema.get("components", {}).pop("securitySchemes", None)
