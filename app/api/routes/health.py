"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import MetricsDep, ModelsDep
from app.api.schemas import Health, ModelReadiness, Readiness, error_responses
from app.core.model_manager import ModelManager

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
async def readyz(models: ModelsDep) -> Readiness:
    """200 once every configured model has a version loaded and warmed (a fallback counts, and
    says so); 503 until, naming the models not ready. With one model (TAGGER_MODEL_NAME), the
    body describes that model; with several, `models` describes each."""
    managers = models.managers
    if models.settings.one_model_form:
        return Readiness(status="ready", **_served(managers[0]).model_dump())
    models.require_ready()
    return Readiness(
        status="ready",
        fallback=any(m.fallback is not None for m in managers),
        models=[_served(m) for m in managers],
    )


def _served(manager: ModelManager) -> ModelReadiness:
    """What `manager` serves (NotReady while nothing)."""
    version = manager.require_served().version
    fallback = manager.fallback
    return ModelReadiness(
        model=manager.name,
        version=version,
        fallback=fallback is not None,
        target_version=version if fallback is None else fallback.target,
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
