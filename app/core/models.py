"""The served models: one `ModelManager` per model, and the bound on versions loaded over all.

TAGGER_MODELS=* follows the store: a model that appears (its first version is published) gets a
manager, which loads, warms and then serves it; a model whose folder disappears is drained (its
queued and in-flight requests are answered) and unloaded. A list (or the one-model form) serves
exactly the models named, whatever the store holds. Each manager has its own batchers, queue
bound, model thread, hot reload and metric labels, so one model's load, failures or reloads do
not touch another's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from app.config import Settings
from app.core.errors import NotFound, NotReady
from app.core.model_manager import ModelManager
from app.core.pinned_loads import LoadRefused
from app.core.servable import PredictHook
from app.metrics import Metrics

logger = logging.getLogger(__name__)

_RELIST_EMPTY_S = 5.0


class ServedModels:
    """Every served model's manager, by name; `Core.servable` dispatches through it."""

    def __init__(
        self,
        settings: Settings,
        store: Any,
        metrics: Metrics,
        predict_hook: PredictHook | None = None,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        """`on_change` is called with the number of served models whenever it changes."""
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self._hook = predict_hook
        self._on_change = on_change
        self.follows_store = settings.served_models is None
        self._managers: dict[str, ModelManager] = {}
        # Whether the set of models is known yet (with `*`: after the store's first listing).
        self._listed = not self.follows_store
        for name in settings.served_models or ():
            self._managers[name] = self._new(name)
        self._watcher: asyncio.Task[None] | None = None
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._started = False

    def _new(self, name: str) -> ModelManager:
        return ModelManager(
            self.settings, self.store, self.metrics, self._hook, name=name, slots=self
        )

    # -- what is served -------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return sorted(self._managers)

    @property
    def managers(self) -> list[ModelManager]:
        return [self._managers[name] for name in self.names]

    def find(self, name: str) -> ModelManager | None:
        """The manager of `name`, or None when it is not served here."""
        return self._managers.get(name)

    def manager(self, name: str) -> ModelManager:
        """The manager of `name`; NotFound when it is not served here, NotReady while the
        store has not been listed yet (TAGGER_MODELS=*)."""
        found = self._managers.get(name)
        if found is not None:
            return found
        if not self._listed:
            raise NotReady("the model is still loading", self.settings.retry_after_s)
        served = ", ".join(repr(n) for n in self.names) or "none"
        raise NotFound(f"model {name!r} is not served here; served: {served}", "model_not_found")

    @property
    def ready(self) -> bool:
        """Every configured model has a served version (and, with `*`, there is one)."""
        return self._listed and bool(self._managers) and not self.not_ready()

    def require_ready(self) -> None:
        """NotReady, naming each model not served yet and why, unless every one is served."""
        if not self.follows_store and len(self._managers) == 1:
            self.managers[0].require_served()  # one model: its own message, as before
            return
        if self.ready:
            return
        retry_s = self.settings.retry_after_s
        if not self._listed:  # TAGGER_MODELS=*, before the store's first listing
            raise NotReady("the model is still loading", retry_s)
        waiting = [m for m in self.managers if not m.ready]
        detail = "; ".join(f"{m.name}: {m.not_ready_reason()}" for m in waiting)
        raise NotReady(
            f"not ready: {detail or 'no model in the store yet (TAGGER_MODELS=*)'}", retry_s
        )

    def not_ready(self) -> list[str]:
        """The configured models with no served version yet."""
        return [m.name for m in self.managers if not m.ready]

    @property
    def loaded_total(self) -> int:
        """Versions loaded now over every model (served plus pinned)."""
        return sum(len(m.loaded_versions) for m in self._managers.values())

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every manager (with `*`: list the store, then follow it) in the background."""
        self._started = True
        if self.follows_store:
            self._watcher = asyncio.get_running_loop().create_task(
                self._follow_store(), name="model-store-watcher"
            )
            self._watcher.add_done_callback(_log_task_failure)
        else:
            for manager in self._managers.values():
                manager.start()

    async def stop(self) -> None:
        """Stop following the store, then drain every model."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await asyncio.gather(*(m.stop() for m in self._managers.values()))
        if self._draining:
            timeout = self.settings.shutdown_timeout_s
            await asyncio.wait(list(self._draining.values()), timeout=timeout)

    async def _follow_store(self) -> None:
        interval = self.settings.poll_interval_s
        while True:
            try:
                await self.sync()
            except Exception:
                logger.exception("listing the models in the store failed")
            if interval > 0:
                await asyncio.sleep(interval)
            elif not self._managers:
                await asyncio.sleep(_RELIST_EMPTY_S)  # load once: wait for a first model
            else:
                return

    async def sync(self) -> None:
        """Serve the models the store holds now (TAGGER_MODELS=*): start new ones, drain and
        unload the ones whose folder is gone."""
        names = set(await asyncio.to_thread(self.store.models))
        # A model back while its old manager still drains waits for the next poll, so the
        # old one's metric clean-up cannot remove the new one's series.
        for name in sorted(names - set(self._managers) - set(self._draining)):
            logger.info("model %s appeared in the store; loading it", name)
            manager = self._managers[name] = self._new(name)
            manager.start()
        for name in sorted(set(self._managers) - names):
            logger.info("model %s left the store; draining and unloading it", name)
            manager = self._managers.pop(name)
            task = asyncio.get_running_loop().create_task(
                manager.stop(forget=True), name=f"unload-{name}"
            )
            self._draining[name] = task
            task.add_done_callback(lambda _, name=name: self._draining.pop(name, None))
            task.add_done_callback(_log_task_failure)
        self._listed = True
        if self._on_change is not None:
            self._on_change(len(self._managers))

    # -- TAGGER_MAX_TOTAL_LOADED_VERSIONS (ModelManager's SlotKeeper) ----------------------------

    def _full(self, asking: ModelManager) -> bool:
        bound = self.settings.max_total_loaded_versions
        if bound is None:
            return False
        loading = sum(1 for m in self._managers.values() if m is not asking and m.loading_pinned)
        return self.loaded_total + loading >= bound

    def room_for_pinned(self, manager: ModelManager) -> None:
        """Unload the pinned version (of any model) idle longest, if one is needed and idle for
        a request timeout; else LoadRefused."""
        if not self._full(manager):
            return
        idle_after_s = self.settings.request_timeout_s
        victim = self._least_recently_used()
        now = time.monotonic()
        if victim is None or now - victim[2] < idle_after_s:
            bound = self.settings.max_total_loaded_versions
            retry_s = 1.0 if victim is None else victim[2] + idle_after_s - now
            raise LoadRefused(
                f"all {bound} version slots (TAGGER_MAX_TOTAL_LOADED_VERSIONS) hold served "
                f"versions or pinned versions used in the last {idle_after_s:g} s",
                retry_s,
            )
        victim[0].unload_pinned(victim[1])

    def room_for_served(self, manager: ModelManager) -> bool:
        """A model's first served version takes the least recently used pinned version's slot
        (in use or not: a served version comes first); False when only served ones are left."""
        if not self._full(manager):
            return True
        victim = self._least_recently_used()
        if victim is None:
            return False
        victim[0].unload_pinned(victim[1])
        return True

    def _least_recently_used(self) -> tuple[ModelManager, int, float] | None:
        pinned = [
            (m, version, last_used)
            for m in self._managers.values()
            for version, last_used in m.pinned_idle_since.items()
        ]
        return min(pinned, key=lambda entry: entry[2], default=None)


def _log_task_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=task.exception())
