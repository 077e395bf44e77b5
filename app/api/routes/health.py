"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import ManagerDep, MetricsDep
from app.api.schemas import Health, Readiness, error_responses

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
async def readyz(manager: ManagerDep) -> Readiness:
    """200 once a version is loaded and warmed (a fallback counts, and says so); 503 until."""
    served = manager.require_served()
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
async def metrics(registry: MetricsDep) -> Response:
    """Prometheus text format. Reads the collectors only: it never waits on the model."""
    return Response(registry.render(), media_type=registry.content_type)
