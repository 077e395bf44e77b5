"""How uvicorn serves the app: its `Config` from `Settings`, with the bounded HTTP protocol of
app.server.protocol (limits in app.server.limits, its own answers in app.server.refusals)."""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI
from prometheus_client import Counter

from app.api.deps import metrics_of
from app.config import Settings
from app.server.limits import TransportLimits
from app.server.protocol import TaggerHttpProtocol

__all__ = ["build_config", "protocol_class"]


def protocol_class(settings: Settings, refusals: Counter) -> type[TaggerHttpProtocol]:
    """A `TaggerHttpProtocol` bound to these settings' limits and this refusal counter."""
    attributes = {"limits": TransportLimits.from_settings(settings), "refusals": refusals}
    return type("BoundTaggerHttpProtocol", (TaggerHttpProtocol,), attributes)


def build_config(app: FastAPI, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's `Config` for `app` (made by `create_app(settings)`): uvloop when installed,
    the bounded httptools protocol, app.logging's access log instead of uvicorn's."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "auto",
        "http": protocol_class(settings, metrics_of(app).http_refusals),
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": settings.shutdown_timeout_s or None,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)
