"""The drain test's client tells each way a request can end, against tiny loopback servers."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

from benchmarks import keepalive

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
OK_CLOSE = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}"
Second = Callable[[asyncio.StreamWriter], Awaitable[None]]


def test_parse_head_reads_status_length_and_close() -> None:
    head = keepalive.parse_head(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 7")
    assert head == keepalive.Head(503, 7, close=False)
    closing = keepalive.parse_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 2")
    assert closing.close is True
    assert keepalive.parse_head(b"HTTP/1.0 200 OK\r\ncontent-length: 0").close is True
    with pytest.raises(ValueError, match="status line"):
        keepalive.parse_head(b"SSH-2.0-OpenSSH_9.6")


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)


async def _outcomes(second: Second, timeout_s: float = 5.0) -> Counter[str]:
    """One client against a server that answers its first request, stops listening, then
    handles the second request with `second`."""
    server: asyncio.Server | None = None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()
        await _read_request(reader)
        assert server is not None
        server.close()  # later connections are refused
        await second(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = keepalive.classify_request("127.0.0.1", port, "/classify", b"\x89PNG", "image/png")
    load = keepalive.KeepAliveLoad("127.0.0.1", port, request, clients=1, timeout_s=timeout_s)
    load.start()
    assert await load.wait(timeout_s=10.0)
    assert not load.dropped_on_new_connection  # the first request on each connection was answered
    return load.outcomes


async def _answer_and_close(writer: asyncio.StreamWriter) -> None:
    writer.write(OK_CLOSE)
    await writer.drain()
    writer.close()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _half_answer(writer: asyncio.StreamWriter) -> None:
    writer.write(OK[:20])
    await writer.drain()
    writer.close()


async def _hang(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3)
    writer.close()


async def test_connection_close_answer_then_refused_is_clean() -> None:
    outcomes = await _outcomes(_answer_and_close)
    assert outcomes == Counter({"200": 2, keepalive.REFUSED: 1})


@pytest.mark.parametrize(
    ("second", "outcome"),
    [
        (_close, keepalive.CLOSED),
        (_reset, keepalive.RESET),
        (_half_answer, keepalive.TRUNCATED),
    ],
)
async def test_a_request_the_server_dropped_is_named_for_how(second: Second, outcome: str) -> None:
    outcomes = await _outcomes(second)
    assert outcomes == Counter({"200": 1, outcome: 1, keepalive.REFUSED: 1})
    assert outcome in keepalive.DROPPED


async def test_no_answer_in_time_is_a_timeout() -> None:
    outcomes = await _outcomes(_hang, timeout_s=0.3)
    assert outcomes == Counter({"200": 1, keepalive.TIMEOUT: 1, keepalive.REFUSED: 1})


async def test_a_drop_on_a_fresh_connection_is_counted_apart() -> None:
    server: asyncio.Server | None = None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        assert server is not None
        server.close()
        await _reset(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = keepalive.classify_request("127.0.0.1", port, "/classify", b"\x89PNG", "image/png")
    load = keepalive.KeepAliveLoad("127.0.0.1", port, request, clients=1, timeout_s=5.0)
    load.start()
    assert await load.wait(timeout_s=10.0)
    assert load.outcomes == Counter({keepalive.RESET: 1, keepalive.REFUSED: 1})
    assert load.dropped_on_new_connection == Counter({keepalive.RESET: 1})
