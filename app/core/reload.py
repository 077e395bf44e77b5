"""Hot reload of the served version: watch the store, load and serve what the alias (or latest)
points at, and fall back to an older version when it cannot be loaded and nothing is served yet.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from app.core.fallback import Fallback, fallback_candidates
from app.core.servable import Servable
from model_store.errors import ModelStoreError

if TYPE_CHECKING:
    from app.core.model_manager import ModelManager

logger = logging.getLogger(__name__)

_RETRY_UNLOADED_S = 5.0


class Reloader:
    """Keeps one model's served version what its alias (or latest) points at."""

    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager
        self.fallback: Fallback | None = None
        manager.metrics.serving_fallback.labels(manager.name).set(0)

    async def watch(self) -> None:
        """Refresh every TAGGER_POLL_INTERVAL_S; sooner while nothing or a fallback is served."""
        manager = self._manager
        interval = manager.settings.poll_interval_s
        while True:
            try:
                await self.refresh()
            except Exception:
                logger.exception("checking the model store failed")
            if manager.served is None or self.fallback is not None:
                delay = min(interval, _RETRY_UNLOADED_S) if interval > 0 else _RETRY_UNLOADED_S
            elif interval > 0:
                delay = interval
            else:
                return
            await asyncio.sleep(delay)

    async def refresh(self) -> None:
        """Serve what the alias (or latest) points at now, once it has loaded and warmed.

        If it cannot be loaded, a running replica keeps what it serves; one that serves nothing
        yet falls back to an older version (see `fallback_candidates`).
        """
        manager = self._manager
        ref = manager.alias or "latest"
        try:
            target = await asyncio.to_thread(manager.store.resolve, manager.name, ref)
        except ModelStoreError as exc:
            if manager.served is None:
                logger.warning("nothing to serve yet: %s", exc)
            return
        if manager.served is not None and manager.served.version == target:
            self._set_fallback(None)
            return
        if manager.served is None and manager._slots is not None:
            manager.waiting_for_slot = not manager._slots.room_for_served(manager)
            if manager.waiting_for_slot:
                logger.error("%s: %s", manager.name, manager.not_ready_reason())
                return
        servable = await self._take_or_load(target)
        if servable is not None:
            manager._serve(servable, ref)
            self._set_fallback(None)
            return
        reason = manager._failures.reason(target)
        if reason is None:
            reason = "it could not be loaded"
        if manager.served is None:
            servable = await self._fall_back(target)
            if servable is None:
                logger.error(
                    "%s: nothing can be served: v%d failed and no older version loads",
                    manager.name,
                    target,
                )
                return
            manager._serve(servable, f"fallback for v{target}")
        self._set_fallback(Fallback(target, reason))

    async def _take_or_load(self, version: int) -> Servable | None:
        """A pinned copy of `version`, or a fresh load; None while it fails (and backs off)."""
        manager = self._manager
        async with manager._lock(version):
            servable = manager._pinned.take(version)
            if servable is not None:
                return servable
            if manager._failures.backing_off(version):
                return None
            try:
                return await manager._load(version)
            except Exception:
                return None

    async def _fall_back(self, target: int) -> Servable | None:
        manager = self._manager
        candidates = await asyncio.to_thread(
            fallback_candidates, manager.store, manager.name, manager.alias, target
        )
        for version in candidates:
            servable = await self._take_or_load(version)
            if servable is not None:
                return servable
        return None

    def _set_fallback(self, fallback: Fallback | None) -> None:
        """Record (and log once) that the served version stands in for a failed target."""
        if fallback == self.fallback:
            return
        manager = self._manager
        self.fallback = fallback
        manager.metrics.serving_fallback.labels(manager.name).set(0 if fallback is None else 1)
        if fallback is not None and manager.served is not None:
            logger.error(
                "serving %s v%d as a fallback: v%d, which should be served, failed: %s",
                manager.name,
                manager.served.version,
                fallback.target,
                fallback.reason,
            )
