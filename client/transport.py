"""A lean httpx transport for plain-HTTP keep-alive traffic to one service, on asyncio streams.

httpx's default transport (httpcore over anyio) spends about 1.5 ms of CPU per request on a small
machine, several times what the service spends decoding eight images, and in bulk tagging the
client shares the cores with the service. This one writes each request in one `write` and reads
the answer with two stream reads; httpx above it (URLs, headers, Response, errors) is unchanged.
It speaks HTTP/1.1 to `http://` origins only; `AsyncTaggerClient` uses httpx's own transport for
https and wherever a proxy applies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

MAX_HEAD_BYTES = 64 * 1024
NO_BODY_STATUSES = {204, 304}
MAX_IDLE_PER_ORIGIN = 64


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def usable(self) -> bool:
        """Not closed by either side; the server may still close it as we write (see retry)."""
        return not (self.writer.is_closing() or self.reader.at_eof())

    def close(self) -> None:
        self.writer.close()


class _StaleConnection(Exception):
    """A reused keep-alive connection closed before any byte of the answer came back."""


class StreamTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive over `asyncio.open_connection`; one request per connection at a
    time, idle connections kept per origin. Failures raise httpx's own exceptions, so callers
    see the same errors as with httpx's default transport."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"StreamTransport speaks http://, not {url.scheme}://")
        origin = (url.host, url.port or 80)
        data = _request_bytes(request, await request.aread())
        timeouts = request.extensions.get("timeout", {})
        reused = self._take_idle(origin)
        if reused is not None:
            try:
                return await self._exchange(reused, origin, data, request, timeouts, fresh=False)
            except _StaleConnection:
                # The server closed it while idle and answered nothing: send once more on a new
                # connection, as browsers do (fine here: a classify request changes nothing).
                pass
        connection = await _connect(origin, timeouts.get("connect"), request)
        return await self._exchange(connection, origin, data, request, timeouts, fresh=True)

    def _take_idle(self, origin: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(origin, [])
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def _exchange(
        self,
        connection: _Connection,
        origin: tuple[str, int],
        data: bytes,
        request: httpx.Request,
        timeouts: dict[str, float | None],
        *,
        fresh: bool,
    ) -> httpx.Response:
        keep = False
        try:
            with _mapped_errors(request):
                try:
                    connection.writer.write(data)
                    async with asyncio.timeout(timeouts.get("write")):
                        await connection.writer.drain()
                    async with asyncio.timeout(timeouts.get("read")):
                        head = await connection.reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                    partial = getattr(exc, "partial", b"")
                    if not fresh and not partial:
                        raise _StaleConnection from exc
                    raise
                status, headers, reason = _parse_head(head, request)
                async with asyncio.timeout(timeouts.get("read")):
                    while 100 <= status < 200:  # interim answers (100 Continue): the final follows
                        head = await connection.reader.readuntil(b"\r\n\r\n")
                        status, headers, reason = _parse_head(head, request)
                    body, keep = await _read_body(connection.reader, request, status, headers)
        finally:
            if keep:
                idle = self._idle.setdefault(origin, [])
                if len(idle) < MAX_IDLE_PER_ORIGIN:
                    idle.append(connection)
                else:
                    connection.close()
            else:
                connection.close()
        return httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(body),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _request_bytes(request: httpx.Request, body: bytes) -> bytes:
    """The request line, headers and body as one buffer (httpx already set Host and
    Content-Length)."""
    target = request.url.raw_path
    lines = [request.method.encode() + b" " + target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw]
    if body and "content-length" not in request.headers:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def _connect(
    origin: tuple[str, int], timeout: float | None, request: httpx.Request
) -> _Connection:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*origin, limit=MAX_HEAD_BYTES)
    except TimeoutError as exc:
        message = f"connecting to {origin[0]}:{origin[1]}"
        raise httpx.ConnectTimeout(message, request=request) from exc
    except OSError as exc:
        raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
    return _Connection(reader, writer)


@contextlib.contextmanager
def _mapped_errors(request: httpx.Request) -> Iterator[None]:
    """Socket and parse failures as the httpx exceptions the retry logic knows."""
    try:
        yield
    except _StaleConnection:
        raise
    except TimeoutError as exc:
        raise httpx.ReadTimeout("timed out waiting for the server", request=request) from exc
    except asyncio.IncompleteReadError as exc:
        raise httpx.RemoteProtocolError(
            "the server closed the connection mid-answer", request=request
        ) from exc
    except (asyncio.LimitOverrunError, ValueError) as exc:
        raise httpx.RemoteProtocolError(f"malformed answer: {exc}", request=request) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc


def _parse_head(
    head: bytes, request: httpx.Request
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    status_line, *header_lines = head[:-4].split(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise ValueError(f"bad status line {status_line[:100]!r}")
    headers = []
    for line in header_lines:
        name, colon, value = line.partition(b":")
        if not colon:
            raise ValueError(f"bad header line {line[:100]!r}")
        headers.append((name.strip(), value.strip()))
    return int(code), headers, reason


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def _read_body(
    reader: asyncio.StreamReader,
    request: httpx.Request,
    status: int,
    headers: list[tuple[bytes, bytes]],
) -> tuple[bytes, bool]:
    """The answer's body and whether the connection can carry another request."""
    keep = (_header(headers, b"connection") or b"").lower() != b"close"
    if request.method == "HEAD" or status in NO_BODY_STATUSES:
        return b"", keep
    if (_header(headers, b"transfer-encoding") or b"").lower().endswith(b"chunked"):
        return await _read_chunked(reader), keep
    length = _header(headers, b"content-length")
    if length is not None:
        return await reader.readexactly(int(length)), keep
    return await reader.read(), False  # delimited by the end of the connection


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("a chunk without its closing CRLF")
