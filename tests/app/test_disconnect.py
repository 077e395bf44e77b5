"""`unless_disconnected`: work for a client that hangs up is cancelled, told by the server's
`HangUp` (no task waiting on `receive`), or by such a task under another ASGI server."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from starlette.requests import Request

from app.api.disconnect import HANG_UP_SCOPE_KEY, HangUp, unless_disconnected
from app.api.errors import ClientGone


def _request(receive: Any, hang_up: HangUp | None = None) -> Request:
    scope: dict[str, Any] = {"type": "http", "method": "POST", "headers": []}
    if hang_up is not None:
        scope[HANG_UP_SCOPE_KEY] = hang_up
    return Request(scope, receive)


async def _never_receive() -> dict[str, Any]:
    raise AssertionError("with a HangUp, nothing waits on receive")


async def test_a_hang_up_cancels_the_work_without_reading_receive() -> None:
    hang_up, work = HangUp(), asyncio.get_running_loop().create_future()
    watched = asyncio.ensure_future(unless_disconnected(_request(_never_receive, hang_up), work))
    await asyncio.sleep(0)
    hang_up.hang_up()
    with pytest.raises(ClientGone):
        await watched
    assert work.cancelled()
    hang_up.hang_up()  # once only: nothing left to run


async def test_a_client_already_gone_never_starts_the_work() -> None:
    hang_up, started = HangUp(), []
    hang_up.hang_up()

    async def work() -> int:
        started.append(True)
        return 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        with pytest.raises(ClientGone):
            await unless_disconnected(_request(_never_receive, hang_up), work())
    assert started == []


async def test_work_that_finished_is_not_cancelled_by_a_later_hang_up() -> None:
    hang_up = HangUp()

    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert await unless_disconnected(_request(_never_receive, hang_up), work()) == 7
    hang_up.hang_up()
    await asyncio.sleep(0)  # this task is not cancelled: the callback was removed
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_without_a_hang_up_a_watcher_reads_the_disconnect() -> None:
    left = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await left.wait()
        return {"type": "http.disconnect"}

    work = asyncio.get_running_loop().create_future()
    watched = asyncio.ensure_future(unless_disconnected(_request(receive), work))
    await asyncio.sleep(0)
    left.set()
    with pytest.raises(ClientGone):
        await watched
    assert work.cancelled()
