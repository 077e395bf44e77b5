"""A keep-alive HTTP/1.1 client on raw sockets that classifies how each request ended.

httpx and hey hide what happened to a request that got no answer; a drain test needs to tell
"the listener was closed" (never reached the server: fine) from "reset" or "closed without an
answer" (the server dropped a request it had accepted: not fine). Each worker sends its requests
one after another on one connection, reopening it when the server says `Connection: close` or
closed it while idle, and stops at the first refused connection.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

REFUSED = "refused"  # connect refused: the listener is closed, the request never left
RESET = "reset"  # reset by the server after the request was (partly) sent
CLOSED = "closed_without_answer"  # EOF before any byte of an answer
TRUNCATED = "truncated_answer"  # EOF or reset in the middle of an answer
TIMEOUT = "timeout"
IDLE_CLOSED = "idle_closed"  # the server closed a keep-alive connection before we reused it
CONNECT_ERROR = "connect_error"
BAD_ANSWER = "bad_answer"  # bytes that are not an HTTP/1.x answer
# Outcomes that mean the server dropped a request it may have accepted.
DROPPED = (RESET, CLOSED, TRUNCATED, TIMEOUT, BAD_ANSWER)


def classify_request(host: str, port: int, path: str, body: bytes, content_type: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass(frozen=True)
class Head:
    """The parts of an answer's head the client acts on."""

    status: int
    content_length: int
    close: bool


def parse_head(raw: bytes) -> Head:
    """Status, Content-Length and whether the server will close, from an answer's head."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    close = "close" in headers.get("connection", "").lower() or parts[0] == "HTTP/1.0"
    return Head(int(parts[1]), int(headers.get("content-length", "0")), close)


class KeepAliveLoad:
    """`clients` workers, each a closed loop of requests on its own keep-alive connection."""

    def __init__(
        self, host: str, port: int, request: bytes, clients: int, timeout_s: float = 30.0
    ) -> None:
        self.host, self.port = host, port
        self.request = request
        self.clients = clients
        self.timeout_s = timeout_s
        # Per request: the HTTP status as a string ("200", "503") or one of the names above.
        self.outcomes: Counter[str] = Counter()
        # Of the dropped ones, those that were the first request on a new connection (one the
        # kernel accepted but the server may never have taken from its listen queue).
        self.dropped_on_new_connection: Counter[str] = Counter()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.clients)]

    async def wait(self, timeout_s: float) -> bool:
        """Wait for every worker to end by itself; False (and stop them) after `timeout_s`."""
        _, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
        if pending:
            await self.stop()
        return not pending

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _worker(self) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while not self._stop.is_set():
                await asyncio.sleep(0)  # let a FIN that already arrived be read first
                if reader is not None and reader.at_eof():
                    # The server closed the idle connection before this request: a client
                    # (httpcore too) sees that and reconnects; nothing was sent.
                    self.outcomes[IDLE_CLOSED] += 1
                    writer.close()  # type: ignore[union-attr]
                    reader = writer = None
                fresh = reader is None
                if reader is None:
                    try:
                        reader, writer = await asyncio.open_connection(self.host, self.port)
                    except ConnectionRefusedError:
                        self.outcomes[REFUSED] += 1
                        return
                    except OSError:
                        self.outcomes[CONNECT_ERROR] += 1
                        return
                assert writer is not None
                outcome, keep = await self._exchange(reader, writer)
                self.outcomes[outcome] += 1
                if fresh and outcome in DROPPED:
                    self.dropped_on_new_connection[outcome] += 1
                if not keep:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, bool]:
        """Send one request, read its answer: (outcome, whether the connection can be reused)."""
        got_any = False
        try:
            async with asyncio.timeout(self.timeout_s):
                writer.write(self.request)
                await writer.drain()
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    return (TRUNCATED if exc.partial else CLOSED), False
                got_any = True
                try:
                    head = parse_head(raw[:-4])
                except ValueError:
                    return BAD_ANSWER, False
                await reader.readexactly(head.content_length)
                return str(head.status), not head.close
        except TimeoutError:
            return TIMEOUT, False
        except asyncio.IncompleteReadError:
            return TRUNCATED, False
        except (ConnectionResetError, BrokenPipeError):
            return (TRUNCATED if got_any else RESET), False
