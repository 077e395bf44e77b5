"""Loaded versions: the served one (alias or latest, hot-swapped) and pinned ones (budgeted).

When the version to serve cannot be loaded and nothing is served yet, the newest older version
that loads is served instead (a fallback), and the intended one is retried with a backoff.
The watching and fallback live in `reload`, the pinned versions in `pinned`.
"""

from __future__ import annotations

import asyncio
import logging
from enum import Enum
from typing import Any, Protocol

from app.config import Settings
from app.core.errors import NotFound, NotReady, from_store_error
from app.core.fallback import Fallback
from app.core.load_failures import LoadFailures
from app.core.pinned import PinnedVersions
from app.core.reload import Reloader
from app.core.runtime import RuntimeUnavailable
from app.core.servable import (
    PredictHook,
    Servable,
    drain_and_release,
    load_and_warm,
    start_servable,
)
from app.metrics import Metrics, remove_series
from model_store.errors import ModelStoreError

__all__ = ["ModelManager", "Servable", "VersionLoad"]

logger = logging.getLogger(__name__)


class VersionLoad(Enum):
    """Where one version of the served model stands in this replica."""

    LOADED = "loaded"  # served or pinned: answers now
    LOADING = "loading"
    FAILED = "failed"  # its last load failed (retried after a backoff)
    UNLOADED = "unloaded"  # in the store; loaded on its first request


class SlotKeeper(Protocol):
    """Bounds the versions loaded over every model (TAGGER_MAX_TOTAL_LOADED_VERSIONS)."""

    def room_for_pinned(self, manager: ModelManager) -> None:
        """Make room for one more pinned version of `manager`'s model, or raise LoadRefused."""

    def room_for_served(self, manager: ModelManager) -> bool:
        """Make room for `manager`'s first served version; False if there is none."""


class ModelManager:
    """Loads versions of one model off the event loop, warms them, swaps them in, and drains
    the old ones."""

    def __init__(
        self,
        settings: Settings,
        store: Any,
        metrics: Metrics,
        predict_hook: PredictHook | None = None,
        *,
        name: str | None = None,
        slots: SlotKeeper | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.name = settings.model_name if name is None else name
        # The alias this model serves; "" = its latest version.
        self.alias = settings.alias_for(self.name)
        self.metrics = metrics
        self._slots = slots
        self.waiting_for_slot = False
        self._hook = predict_hook
        self.served: Servable | None = None
        self._failures = LoadFailures()
        self._pinned = PinnedVersions(self)
        self._reload = Reloader(self)
        self._background: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def fallback(self) -> Fallback | None:
        """Why the served version is not the one the alias (or latest) points at; None if it is."""
        return self._reload.fallback

    @property
    def ready(self) -> bool:
        return self.served is not None

    @property
    def loaded_versions(self) -> list[int]:
        versions = self._pinned.versions
        if self.served is not None:
            versions.add(self.served.version)
        return sorted(versions)

    def runtime_of(self, version: int) -> str | None:
        """The runtime a loaded version runs in (onnxruntime or tensorflow); None if unloaded."""
        servable = self._pinned.find(version)
        if servable is None and self.served is not None and self.served.version == version:
            servable = self.served
        return servable.model.runtime if servable is not None else None

    def version_load(self, version: int) -> VersionLoad:
        """Where `version` of the served model stands here (protocols report it as status)."""
        if version in self.loaded_versions:
            return VersionLoad.LOADED
        if self._pinned.is_loading(version):
            return VersionLoad.LOADING
        if self._failures.reason(version) is not None:
            return VersionLoad.FAILED
        return VersionLoad.UNLOADED

    def start(self) -> None:
        """Begin loading the served version and watching the store, in the background."""
        self._watcher = asyncio.get_running_loop().create_task(
            self._reload.watch(), name=f"model-watcher-{self.name}"
        )
        self._watcher.add_done_callback(_log_task_failure)

    async def stop(self, *, forget: bool = False) -> None:
        """Stop watching, then let every loaded version finish its queued and in-flight work.

        `forget`: the model is no longer served (its folder went away): also drop its
        per-model metric series.
        """
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        servables = self._pinned.clear()
        if self.served is not None:
            servables.append(self.served)
        timeout = self.settings.shutdown_timeout_s
        await asyncio.gather(*(s.batcher.close(timeout) for s in servables))
        if self._background:
            await asyncio.wait(self._background, timeout=timeout)
        if forget:
            metrics = self.metrics
            if self.served is not None:
                served = self.served
                labels = (self.name, str(served.version), served.model.runtime)
                remove_series(metrics.model_info, *labels)
            remove_series(metrics.serving_fallback, self.name)
            remove_series(metrics.queue_depth, self.name)

    @property
    def pinned_idle_since(self) -> dict[int, float]:
        """Each pinned version and when it was last used (monotonic)."""
        return self._pinned.idle_since

    @property
    def loading_pinned(self) -> bool:
        return self._pinned.loading

    def unload_pinned(self, version: int) -> None:
        """Drain and drop a pinned version (another model needs its slot)."""
        self._pinned.unload(version)

    # -- serving ------------------------------------------------------------------------------

    def require_served(self) -> Servable:
        """The served version, or NotReady (with the retry hint) while none is loaded yet."""
        if self.served is None:
            raise NotReady(self.not_ready_reason(), self.settings.retry_after_s)
        return self.served

    def not_ready_reason(self) -> str:
        """Why nothing of this model is served yet."""
        if self.waiting_for_slot:
            return (
                f"{self.name} waits for a free slot (TAGGER_MAX_TOTAL_LOADED_VERSIONS "
                f"{self.settings.max_total_loaded_versions} versions are loaded)"
            )
        return "the model is still loading"

    async def get(self, model: str, ref: int | str | None = None) -> Servable:
        """The servable for a request: the served version, or a pinned version/alias.

        Raises NotFound, NotReady, Overloaded (the pinned-load budget) or ModelFailure.
        """
        if model != self.name:
            raise NotFound(
                f"model {model!r} is not served here; try {self.name!r}", "model_not_found"
            )
        if ref is None:
            return self.require_served()
        version = ref if isinstance(ref, int) else await asyncio.to_thread(self._resolve, ref)
        if self.served is not None and version == self.served.version:
            return self.served
        servable = self._pinned.use(version)
        if servable is not None:
            return servable
        if isinstance(ref, int):
            await asyncio.to_thread(self._resolve, ref)  # 404 for a version that does not exist
        return await self._pinned.load(version)

    def _lock(self, version: int) -> asyncio.Lock:
        """One load at a time per version, whether a pinned request or the watcher wants it."""
        return self._pinned.lock(version)

    def _resolve(self, ref: int | str) -> int:
        try:
            return self.store.resolve(self.name, ref)
        except ModelStoreError as exc:
            raise from_store_error(exc) from exc

    async def refresh(self) -> None:
        """Serve what the alias (or latest) points at now, once it has loaded and warmed (or
        fall back; see `Reloader.refresh`)."""
        await self._reload.refresh()

    # -- loading and swapping ------------------------------------------------------------------

    def _serve(self, servable: Servable, why: str) -> None:
        old, self.served = self.served, servable
        model = servable.model
        self.metrics.model_info.labels(self.name, str(model.version), model.runtime).set(1)
        if old is not None:
            old_labels = (self.name, str(old.version), old.model.runtime)
            if old_labels != (self.name, str(model.version), model.runtime):
                remove_series(self.metrics.model_info, *old_labels)
            self._retire(old)
        logger.info(
            "serving %s v%d (%s) with %s on %s",
            self.name,
            model.version,
            why,
            model.runtime,
            model.device,
        )

    async def _load(self, version: int) -> Servable:
        """Load and warm a version on a worker thread; failures are logged and counted."""
        settings = self.settings
        try:
            model = await asyncio.to_thread(
                load_and_warm, settings, self.store, self.name, version, self._hook
            )
        except Exception as exc:
            self._failures.record(version, str(exc))
            self.metrics.reload_failures.labels(self.name).inc()
            # A missing runtime is said in full by its message; anything else gets its traceback.
            trace = not isinstance(exc, RuntimeUnavailable)
            logger.error("loading %s v%d failed: %s", self.name, version, exc, exc_info=trace)
            raise
        self._failures.clear(version)
        if model.onnx_failure is not None:  # served, but through TensorFlow (logged on load)
            self.metrics.reload_failures.labels(self.name).inc()
        return start_servable(settings, self.name, model, self.metrics, self._hook)

    def _retire(self, servable: Servable) -> None:
        """Drain a version's batcher in the background, then drop it."""
        task = asyncio.get_running_loop().create_task(
            drain_and_release(servable, self.settings.shutdown_timeout_s),
            name=f"drain-{self.name}-v{servable.version}",
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_task_failure)


def _log_task_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=task.exception())
