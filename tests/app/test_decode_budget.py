"""DecodeBudget: first come, first served, and a wait that ends takes nothing."""

from __future__ import annotations

import asyncio

import pytest

from app.core.decode_budget import DecodeBudget

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_waiters_are_admitted_in_arrival_order_as_bytes_are_released() -> None:
    seen: list[int] = []
    budget = DecodeBudget(100, seen.append)
    await budget.acquire(80, 1.0)
    order: list[str] = []

    async def take(name: str, cost: int) -> None:
        await budget.acquire(cost, 5.0)
        order.append(name)

    big = asyncio.create_task(take("big", 60))
    await asyncio.sleep(0)
    small = asyncio.create_task(take("small", 10))  # would fit now, but waits behind "big"
    await asyncio.sleep(0.01)
    assert order == [] and budget.in_use == 80
    budget.release(80)
    await asyncio.gather(big, small)
    assert order == ["big", "small"] and budget.in_use == 70
    budget.release(60)
    budget.release(10)
    assert budget.in_use == 0 and seen[-1] == 0 and max(seen) == 80


async def test_a_wait_that_times_out_takes_nothing_and_lets_the_next_in() -> None:
    budget = DecodeBudget(100)
    await budget.acquire(90, 1.0)
    behind = asyncio.create_task(budget.acquire(5, 5.0))
    with pytest.raises(TimeoutError):
        await budget.acquire(50, 0.05)  # arrived first, gives up
    await asyncio.wait_for(behind, 1.0)  # no longer stuck behind the one that left
    assert budget.in_use == 95


async def test_a_cancelled_wait_takes_nothing() -> None:
    budget = DecodeBudget(10)
    await budget.acquire(10, 1.0)
    waiting = asyncio.create_task(budget.acquire(5, 5.0))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    budget.release(10)
    assert budget.in_use == 0
