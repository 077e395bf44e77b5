"""A memory budget for image decodes running at once: waiters are admitted first come,
first served, and each holds its bytes until its decode has finished on its thread."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class DecodeBudget:
    """`capacity` bytes lent to decodes; `acquire` waits (FIFO) until the bytes are free."""

    def __init__(self, capacity: int, on_change: Callable[[int], None] | None = None) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._on_change = on_change

    async def acquire(self, cost: int, timeout_s: float) -> None:
        """Take `cost` bytes (at most `capacity`), waiting behind earlier callers; raises
        `TimeoutError` after `timeout_s` without taking anything."""
        if not self._waiters and self.in_use + cost <= self.capacity:
            self._take(cost)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (cost, waiter)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(cost)  # granted just as the wait ended: hand it on
            elif entry in self._waiters:
                self._waiters.remove(entry)
                self._wake()  # a smaller waiter behind this one may fit now
            raise

    def release(self, cost: int) -> None:
        """Give back bytes taken by `acquire` (on the event loop's thread)."""
        self._take(-cost)
        self._wake()

    def _take(self, cost: int) -> None:
        self.in_use += cost
        if self._on_change is not None:
            self._on_change(self.in_use)

    def _wake(self) -> None:
        while self._waiters and self.in_use + self._waiters[0][0] <= self.capacity:
            cost, waiter = self._waiters.popleft()
            if not waiter.done():
                self._take(cost)
                waiter.set_result(None)
