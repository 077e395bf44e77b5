"""Requests in flight, adapted to the server: halved on each 503, grown back by one per
window of successes (AIMD, as TCP does), never above the caller's `concurrency`.

A fixed number of requests can overflow a server whose queue is smaller than `concurrency`
times the images per request, and then every retry meets the same full queue.
"""

from __future__ import annotations

import asyncio


class AdaptiveLimit:
    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < max(1, int(self.limit)))
            self.in_flight += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def overloaded(self) -> None:
        """The server refused a request for load: halve what goes in flight."""
        self.limit = max(1.0, self.limit / 2)

    def succeeded(self) -> None:
        """One answer: grow by one request per `limit` answers, back up to the maximum."""
        self.limit = min(float(self.maximum), self.limit + 1 / self.limit)
