"""Stop work for a client that has hung up: its images are never run and nothing is sent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from app.api.errors import ClientGone

T = TypeVar("T")


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work` in this task; if the client hangs up meanwhile, cancel it (so its images
    are never run) and raise ClientGone. One watcher task per request, no wrapper task."""
    task = asyncio.current_task()
    assert task is not None
    watching, gone = True, False

    def hang_up(watcher: asyncio.Future[None]) -> None:
        nonlocal gone
        if watching and not watcher.cancelled():
            watcher.exception()  # a receive error counts as gone too; mark it retrieved
            gone = True
            task.cancel()

    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    watcher.add_done_callback(hang_up)
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            task.uncancel()
            raise ClientGone() from None
        raise
    finally:
        watching = False
        watcher.cancel()


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
