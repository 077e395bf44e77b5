"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from app.errors import error_body, request_id_of
from app.schemas import ErrorResponse, Health, Readiness

router = APIRouter(tags=["operations"])


class ServingReadiness(Readiness):
    """Readiness plus whether the served version stands in for one that failed to load."""

    fallback: bool = Field(
        default=False,
        description="true while an older version is served because target_version failed to load",
    )
    target_version: int | None = Field(
        default=None, description="the version the alias (or latest) points at"
    )
    fallback_reason: str | None = Field(default=None, description="why target_version failed")


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (it may still be loading the model)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=ServingReadiness,
    responses={503: {"model": ErrorResponse, "description": "Still loading or warming"}},
)
async def readyz(request: Request) -> ServingReadiness | JSONResponse:
    """200 once a version is loaded and warmed (a fallback counts, and says so); 503 until."""
    manager = request.app.state.manager
    served = manager.served
    if served is None:
        request.state.error_code = "not_ready"
        return JSONResponse(
            error_body("not_ready", "the model is still loading", request_id_of(request)),
            status_code=503,
            headers={"Retry-After": str(request.app.state.settings.retry_after_s)},
        )
    fallback = manager.fallback
    return ServingReadiness(
        status="ready",
        model=manager.name,
        version=served.version,
        fallback=fallback is not None,
        target_version=served.version if fallback is None else fallback.target,
        fallback_reason=None if fallback is None else fallback.reason,
    )


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format. Reads the collectors only: it never waits on the model."""
    registry = request.app.state.metrics
    return Response(registry.render(), media_type=registry.content_type)
