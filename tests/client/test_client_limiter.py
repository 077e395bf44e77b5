"""The client's requests in flight: halved on a 503, grown back by answers, never above the
caller's concurrency."""

from __future__ import annotations

import asyncio

from client.limiter import AdaptiveLimit


async def test_overload_halves_what_goes_in_flight_and_answers_grow_it_back() -> None:
    limit = AdaptiveLimit(8)
    peak = 0

    async def request() -> None:
        nonlocal peak
        async with limit:
            peak = max(peak, limit.in_flight)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(request() for _ in range(32)))
    assert peak == 8

    limit.overloaded()
    limit.overloaded()
    assert limit.limit == 2
    peak = 0
    await asyncio.gather(*(request() for _ in range(4)))
    assert peak <= 2
    for _ in range(200):
        limit.succeeded()
    assert limit.limit == 8
    for _ in range(10):
        limit.overloaded()
    assert limit.limit == 1  # always one request may go
