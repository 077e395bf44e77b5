"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.errors import error_body, request_id_of
from app.schemas import Health, Readiness, error_responses

router = APIRouter(tags=["operations"], responses=error_responses(431))


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (it may still be loading the model)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses=error_responses(503),
)
async def readyz(request: Request) -> Readiness | JSONResponse:
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
    return Readiness(
        status="ready",
        model=manager.name,
        version=served.version,
        fallback=fallback is not None,
        target_version=served.version if fallback is None else fallback.target,
        fallback_reason=None if fallback is None else fallback.reason,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text format. Reads the collectors only: it never waits on the model."""
    registry = request.app.state.metrics
    return Response(registry.render(), media_type=registry.content_type)
