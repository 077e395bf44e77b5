"""Stop work for a client that has hung up: its images are never run and nothing is sent."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request

from app.api.errors import ClientGone

T = TypeVar("T")

# Where app.server puts a request's `HangUp` in its scope.
HANG_UP_SCOPE_KEY = "tagger.hang_up"


class HangUp:
    """Told by the HTTP server (app.server) when the client of one request goes away; runs the
    callbacks added for that, once. Cheaper than a task per request waiting on `receive`."""

    __slots__ = ("_callbacks", "gone")

    def __init__(self) -> None:
        self.gone = False
        self._callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the client goes away (check `gone` first: once gone, never)."""
        self._callbacks.append(callback)

    def remove(self, callback: Callable[[], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def hang_up(self) -> None:
        """The client went away: run every callback (once, however often this is called)."""
        if self.gone:
            return
        self.gone = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work` in this task; if the client hangs up meanwhile, cancel it (so its images
    are never run) and raise ClientGone. The server's `HangUp` says when (app.server); without
    one (an ASGI server other than ours), a watcher task waits on `receive` instead."""
    task = asyncio.current_task()
    assert task is not None
    hang_up = request.scope.get(HANG_UP_SCOPE_KEY)
    if not isinstance(hang_up, HangUp):
        hang_up = None
    watching, gone = True, False

    def cancel() -> None:
        nonlocal gone
        if watching:
            gone = True
            task.cancel()

    watcher = None
    if hang_up is not None:
        if hang_up.gone:
            if inspect.iscoroutine(work):
                work.close()  # never started: nothing to cancel, no "never awaited" warning
            raise ClientGone()
        hang_up.add(cancel)
    else:
        watcher = asyncio.ensure_future(_wait_for_disconnect(request))
        watcher.add_done_callback(lambda done: None if done.cancelled() else _gone(done, cancel))
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            task.uncancel()
            raise ClientGone() from None
        raise
    finally:
        watching = False
        if hang_up is not None:
            hang_up.remove(cancel)
        if watcher is not None:
            watcher.cancel()


def _gone(watcher: asyncio.Future[None], cancel: Callable[[], None]) -> None:
    watcher.exception()  # a receive error counts as gone too; mark it retrieved
    cancel()


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
