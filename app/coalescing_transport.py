"""A transport that sends a response's head and body in one write.

uvicorn writes the status line and headers as soon as the app starts its answer, and the body
in a second write: for a small JSON answer that is two system calls, two loopback packets and
two wake-ups of the client. `CoalescingTransport` holds a write back until the next write or
the end of the event loop's current step, whichever comes first: a head and the body that
follows it in the same step leave together (one `writelines`, one system call), and a write on
its own leaves one step later. What ends the stream (`close`, `write_eof`) sends what is held
first; `abort` drops it, as it drops everything unsent; once the connection is closing, what is
held is dropped as a write to it would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


class CoalescingTransport:
    """Wraps an `asyncio.Transport`; everything but the writes is the wrapped transport's."""

    __slots__ = ("_flush", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        held = self._take()
        if held is None:
            self._held = bytes(data)
            self._flush = self._loop.call_soon(self.flush)
        elif not self._transport.is_closing():
            self._transport.writelines([held, data])

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(chunks))

    def flush(self) -> None:
        """Send what is held now."""
        held = self._take()
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._take()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def _take(self) -> bytes | None:
        held, self._held = self._held, None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        return held
