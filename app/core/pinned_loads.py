"""The budget for loading pinned versions: one at a time, N a minute, none evicted while in use.

Loading a version costs about a second of CPU, so a client cycling pinned versions would
otherwise take it from the served version (measured: 517 -> 105 req/s).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

WINDOW_S = 60.0


class LoadRefused(Exception):
    """A pinned version cannot be loaded now; it may be after `retry_after_s`."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class PinnedLoadBudget:
    """Admits pinned loads: one at a time, `loads_per_minute` at most, into a slot it may free.

    A slot is freed only from a version unused for `idle_after_s` (the request timeout: every
    request that looked it up has finished by then), so versions in use never evict each other
    (LRU thrash) and a fresh load is never evicted before its request ran.
    """

    def __init__(
        self,
        loads_per_minute: int,
        slots: int,
        idle_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loads_per_minute = loads_per_minute
        self.slots = slots
        self.idle_after_s = idle_after_s
        self.loading: int | None = None
        self._clock = clock
        self._starts: deque[float] = deque()

    def admit(self, version: int, last_used: Mapping[int, float]) -> int | None:
        """Reserve a load of `version`; returns the pinned version to unload first, if any.

        `last_used` maps each pinned version to when it was last used (same clock). Raises
        `LoadRefused` instead of reserving; call `finished()` after an admitted load.
        """
        now = self._clock()
        if self.loading is not None:
            raise LoadRefused(f"v{self.loading} is loading", 1.0)
        while self._starts and now - self._starts[0] >= WINDOW_S:
            self._starts.popleft()
        if len(self._starts) >= self.loads_per_minute:
            raise LoadRefused(
                f"{self.loads_per_minute} loads in the last minute "
                "(TAGGER_PINNED_LOADS_PER_MINUTE)",
                self._starts[0] + WINDOW_S - now,
            )
        victim = None
        if len(last_used) >= self.slots:
            victim = min(last_used, key=last_used.__getitem__)
            if now - last_used[victim] < self.idle_after_s:
                raise LoadRefused(
                    f"all {self.slots} pinned slots (TAGGER_MAX_LOADED_VERSIONS) hold versions "
                    f"used in the last {self.idle_after_s:g} s",
                    last_used[victim] + self.idle_after_s - now,
                )
        self._starts.append(now)
        self.loading = version
        return victim

    def finished(self) -> None:
        self.loading = None

    def withdraw(self) -> None:
        """Undo the last `admit` (the load did not start): it uses no budget."""
        if self.loading is not None and self._starts:
            self._starts.pop()
        self.loading = None
