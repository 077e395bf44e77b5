"""Typed dependencies: what a route needs from the service, named by type (`ModelsDep`, ...).

`create_app` keeps each shared object on `app.state`; this module is the one place that reads
it back, typed. Routes declare `models: ModelsDep` instead of reading `request.app.state`.
Every provider is `async def`, so FastAPI calls it on the event loop (a plain `def` would run
on its thread pool, one thread hop per request), and takes only the `Request`, so it adds no
parameter to the OpenAPI schema. Middleware, outside FastAPI's injection, uses the `*_of`
accessors on the ASGI app instead.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.applications import Starlette

from app.config import Settings
from app.core.inference import Core
from app.core.models import ServedModels
from app.metrics import Metrics
from app.samples import SampleImages


def settings_of(app: Starlette) -> Settings:
    """The settings `app` (made by `create_app`) was built with."""
    return app.state.settings


def metrics_of(app: Starlette) -> Metrics:
    """The metrics `app` (made by `create_app`) reports to."""
    return app.state.metrics


def models_of(app: Starlette) -> ServedModels:
    """The served models (one manager each) `app` (made by `create_app`) serves from."""
    return app.state.models


def core_of(app: Starlette) -> Core:
    """The serving core `app` (made by `create_app`) answers with."""
    return app.state.core


def samples_of(app: Starlette) -> SampleImages:
    """The sample images the page at `/` offers."""
    return app.state.samples


async def get_app_settings(request: Request) -> Settings:
    return settings_of(request.app)


async def get_app_metrics(request: Request) -> Metrics:
    return metrics_of(request.app)


async def get_served_models(request: Request) -> ServedModels:
    return models_of(request.app)


async def get_core(request: Request) -> Core:
    return core_of(request.app)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
MetricsDep = Annotated[Metrics, Depends(get_app_metrics)]
ModelsDep = Annotated[ServedModels, Depends(get_served_models)]
CoreDep = Annotated[Core, Depends(get_core)]
