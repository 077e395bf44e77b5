"""`create_app(settings)`: the FastAPI application, built on demand (never at import)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry

from app.api.admission import Admission, AdmissionMiddleware
from app.api.auth import require_api_key
from app.api.classify_fast_path import ClassifyFastPath
from app.api.errors import install_error_handlers
from app.api.oip import errors as oip_errors
from app.api.oip import routes as oip
from app.api.openapi import settings_openapi
from app.api.request_context import RequestContextMiddleware
from app.api.routes import classify, docs, evaluation, health, limits, models, page
from app.api.tfserving import routes as tfserving
from app.config import Settings, get_settings
from app.core.decode_budget import DecodeBudget
from app.core.inference import Core
from app.core.models import ServedModels
from app.metrics import Metrics
from app.samples import SampleImages

logger = logging.getLogger(__name__)

_READY_POLL_S = 0.05

# FastAPI >= 0.16x checks for OpenTelemetry providers on every request (several % of a core at
# high rates). The service reports through Prometheus, so that layer is switched off.
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def create_app(
    settings: Settings | None = None,
    *,
    registry: CollectorRegistry | None = None,
    store: Any = None,
    predict_hook: Callable[[np.ndarray], None] | None = None,
    listen_when_ready: Callable[[], bool] | None = None,
) -> FastAPI:
    """Build the service.

    `registry` isolates metrics (tests); `store` replaces the `ModelStore` at
    `settings.model_store`; `predict_hook` runs on the model thread before every model call,
    warm-up included (tests use it to hold the model). With `listen_when_ready` the lifespan
    startup (and so uvicorn's listening) waits until every model is ready, or until that
    function returns True (shutdown asked for): a worker of several takes no connection it
    would refuse as not ready.
    """
    settings = settings or get_settings()
    if store is None:
        from model_store.store import ModelStore

        store = ModelStore(settings.model_store)
    metrics = Metrics(registry)
    admission = Admission(
        settings.in_flight_limit,
        settings.buffered_body_limit_bytes,
        settings.retry_after_s,
        metrics.rejected_overloaded,
        metrics.buffered_body_bytes.set,
    )

    def bound_in_flight(model_count: int) -> None:
        """TAGGER_MAX_IN_FLIGHT_REQUESTS bounds each model's requests, and all of them together
        to that per served model, so a flood on one model cannot take another's slots."""
        admission.limit = settings.in_flight_limit * max(1, model_count)

    served = ServedModels(settings, store, metrics, predict_hook, on_change=bound_in_flight)
    bound_in_flight(len(served.names))

    # Images are decoded on their own pool so they never queue behind other blocking work. Made
    # here (its threads start with the first image), so the routes' dependencies always resolve,
    # even in process without a lifespan; shut down when the lifespan ends.
    executor = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode")
    decode_budget = DecodeBudget(settings.max_decode_bytes, metrics.decode_bytes_in_use.set)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        served.start()  # loads and warms in the background; /readyz turns 200 when done
        stop_waiting = listen_when_ready or (lambda: False)
        became_ready = asyncio.ensure_future(_count_once_ready(served, metrics, stop_waiting))
        if listen_when_ready is not None:
            await became_ready
        names = settings.served_models
        what = ", ".join(names) if names is not None else "every model in the store"
        logger.info("serving %s from %s", what, settings.model_store)
        try:
            yield
        finally:
            became_ready.cancel()
            await served.stop()
            executor.shutdown(wait=False, cancel_futures=True)
            logger.info("stopped")

    app = FastAPI(
        **_NO_NATIVE_TELEMETRY,
        title="cnn-tagger",
        summary="Image classification with a versioned CNN and dynamic batching.",
        version="0.1.0",
        lifespan=lifespan,
        # Served by app.api.routes.docs instead, behind the API key like every other route.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(require_api_key)] if settings.api_key is not None else [],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.models = served
    app.state.core = Core(settings, metrics, served, executor, decode_budget)
    app.state.samples = SampleImages(settings.fashion_mnist_dir)
    app.state.admission = admission
    install_error_handlers(app, {"/v2": oip_errors.STYLE})
    # Innermost: answers the usual classify request once admission has taken it in.
    app.add_middleware(ClassifyFastPath, core=app.state.core, routes=classify.router.routes)
    # Added before RequestContextMiddleware, so it runs inside it (request id, metrics, log).
    app.add_middleware(
        AdmissionMiddleware,
        admission=admission,
        routes=[*classify.router.routes, *oip.router.routes, *tfserving.router.routes],
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.include_router(classify.router)
    # Before models: an OPTIONS or PUT to `/v1/models/{m}:predict` then answers 405 with
    # `Allow: POST` (the first route whose path matches), not the `Allow: GET` of
    # `/v1/models/{model}`, whose `{model}` would match `fashion:predict` too.
    app.include_router(tfserving.router)
    app.include_router(models.router)
    app.include_router(evaluation.router)
    app.include_router(oip.router)
    app.include_router(health.router)
    app.include_router(limits.router)
    app.include_router(docs.router)
    # The page: public (outside the API-key dependency, which only FastAPI routes carry).
    app.router.routes.extend(page.routes)
    app.openapi = settings_openapi(app, settings)  # type: ignore[method-assign]
    return app


async def _count_once_ready(
    served: ServedModels, metrics: Metrics, stop_waiting: Callable[[], bool]
) -> None:
    """Wait until every model is ready the first time (or `stop_waiting()`), then count this
    process in `tagger_workers_ready`."""
    while not served.ready:
        if stop_waiting():
            return
        await asyncio.sleep(_READY_POLL_S)
    metrics.workers_ready.set(1)
