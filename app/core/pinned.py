"""Pinned versions: ones a request named (a version or an alias) beside the served one, loaded on
first use under the pinned-load budget and unloaded when idle and their slot is needed."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from app.core.errors import ModelFailure, Overloaded
from app.core.pinned_loads import LoadRefused, PinnedLoadBudget
from app.core.servable import Servable

if TYPE_CHECKING:
    from app.core.model_manager import ModelManager

logger = logging.getLogger(__name__)


class PinnedVersions:
    """The pinned versions of one model, and the per-version load locks it shares with the
    watcher (one load at a time per version, whoever wants it)."""

    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager
        self._servables: OrderedDict[int, Servable] = OrderedDict()
        self._locks: dict[int, asyncio.Lock] = {}
        settings = manager.settings
        self._budget = PinnedLoadBudget(
            settings.pinned_loads_per_minute,
            settings.max_loaded_versions,
            settings.request_timeout_s,
        )

    @property
    def versions(self) -> set[int]:
        return set(self._servables)

    def find(self, version: int) -> Servable | None:
        """The pinned servable of `version`, without counting it as used."""
        return self._servables.get(version)

    def use(self, version: int) -> Servable | None:
        """The pinned servable of `version`, marked most recently used; None if not pinned."""
        if version not in self._servables:
            return None
        self._servables.move_to_end(version)
        servable = self._servables[version]
        servable.last_used = time.monotonic()
        return servable

    def take(self, version: int) -> Servable | None:
        """Remove and return the pinned servable of `version` (it is about to be served)."""
        return self._servables.pop(version, None)

    def clear(self) -> list[Servable]:
        """Drop every pinned version; returns them for the caller to drain."""
        servables = list(self._servables.values())
        self._servables.clear()
        return servables

    def lock(self, version: int) -> asyncio.Lock:
        """One load at a time per version, whether a pinned request or the watcher wants it."""
        return self._locks.setdefault(version, asyncio.Lock())

    def is_loading(self, version: int) -> bool:
        lock = self._locks.get(version)
        return lock is not None and lock.locked()

    @property
    def idle_since(self) -> dict[int, float]:
        """Each pinned version and when it was last used (monotonic)."""
        return {v: servable.last_used for v, servable in self._servables.items()}

    @property
    def loading(self) -> bool:
        return self._budget.loading is not None

    def unload(self, version: int) -> None:
        """Drain and drop a pinned version (another model needs its slot)."""
        servable = self._servables.pop(version, None)
        if servable is not None:
            logger.info("unloading pinned %s v%d (its slot is needed)", self._manager.name, version)
            self._manager._retire(servable)

    async def load(self, version: int) -> Servable:
        """Load `version` as a pinned version, within the budget; Overloaded or ModelFailure."""
        manager = self._manager
        async with self.lock(version):
            if manager.served is not None and manager.served.version == version:
                return manager.served
            if version in self._servables:
                servable = self._servables[version]
                servable.last_used = time.monotonic()
                return servable
            if manager._failures.backing_off(version):
                raise _unloadable(manager.name, version)
            self._admit(version)
            try:
                servable = await manager._load(version)
            except Exception:
                raise _unloadable(manager.name, version) from None
            finally:
                self._budget.finished()
            servable.last_used = time.monotonic()
            self._servables[version] = servable
            return servable

    def _admit(self, version: int) -> None:
        """Reserve a pinned load (unloading an idle version first), or refuse it at once."""
        manager = self._manager
        last_used = self.idle_since
        try:
            victim = self._budget.admit(version, last_used)
            if victim is None and manager._slots is not None:
                try:
                    manager._slots.room_for_pinned(manager)
                except LoadRefused:
                    self._budget.withdraw()
                    raise
        except LoadRefused as exc:
            manager.metrics.pinned_loads_refused.labels(manager.name).inc()
            retry = max(1, math.ceil(exc.retry_after_s))
            raise Overloaded(
                f"{manager.name} v{version} is not loaded and cannot load now: {exc.reason}; "
                f"retry in {retry} s",
                retry,
                "version_load_budget",
            ) from None
        if victim is not None:
            logger.info("unloading pinned %s v%d (idle longest)", manager.name, victim)
            manager._retire(self._servables.pop(victim))


def _unloadable(name: str, version: int) -> ModelFailure:
    return ModelFailure(
        f"{name} v{version} could not be loaded; see the server log", "model_load_failed"
    )
