"""StreamTransport against real loopback servers that answer in each way HTTP/1.1 allows:
keep-alive reuse, chunked and close-delimited bodies, a 100 Continue before the answer, an idle
connection the server closed, an answer cut short, a server that never answers, a port nobody
listens on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from client.http import _lean_transport
from client.transport import StreamTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok": 1.0}'


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (Content-Length bodies only: what the transport sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback server running `handler` per connection; yields its URL and a list that
    gets one entry per connection accepted."""
    connections: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", connections


def client(url: str, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, transport=StreamTransport(), timeout=timeout)


async def test_requests_reuse_one_connection_and_arrive_whole() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(OK)

    async with serving(keep_alive) as (url, connections), client(url) as http:
        for number in range(3):
            response = await http.post(
                "/v1/x", params={"top_k": 2}, content=b"body %d" % number, headers={"A": "b"}
            )
            assert response.status_code == 200 and response.json() == {"ok": 1.0}
    assert len(connections) == 1
    head, body = seen[2]
    assert head.startswith(b"POST /v1/x?top_k=2 HTTP/1.1\r\n") and body == b"body 2"
    assert b"\r\nhost: 127.0.0.1:" in head.lower() and b"\r\na: b\r\n" in head.lower()


async def test_chunked_close_delimited_and_interim_answers() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(
                b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\nTrailer: x\r\n\r\n"
            )

    async with serving(chunked) as (url, connections), client(url) as http:
        for _ in range(2):
            response = await http.get("/")
            assert (response.status_code, response.text) == (201, "Wikipedia ")
        assert len(connections) == 1

    async def interim_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)

    async with serving(interim_first) as (url, connections), client(url) as http:
        for _ in range(2):
            assert (await http.post("/", content=b"x")).json() == {"ok": 1.0}
        assert len(connections) == 1

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
        await writer.drain()

    async with serving(until_close) as (url, connections), client(url) as http:
        assert [(await http.get("/")).text for _ in range(2)] == ["all of it"] * 2
        assert len(connections) == 2  # a body delimited by the close ends its connection


async def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    async def one_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)  # keep-alive by default, then closed: a server's idle timeout
        await writer.drain()

    async with serving(one_each) as (url, connections), client(url) as http:
        for _ in range(3):
            assert (await http.get("/")).status_code == 200
            await asyncio.sleep(0.05)  # the close reaches the idle connection
        assert len(connections) == 3

    async def closes_as_the_next_arrives(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.write(OK)
        await read_request(reader)  # the idle timeout fires just as a request comes in

    async with serving(closes_as_the_next_arrives) as (url, connections), client(url) as http:
        for _ in range(3):
            assert (await http.get("/")).status_code == 200
        assert len(connections) == 3  # each second request resent once, on a new connection


async def test_failures_are_httpx_transport_errors() -> None:
    async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK[:-4])
        await writer.drain()

    async with serving(cut_short) as (url, _), client(url) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="mid-answer"):
            await http.get("/")

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")

    async with serving(garbage) as (url, _), client(url) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="bad status line"):
            await http.get("/")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(10)

    async with serving(silent) as (url, _), client(url, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/")

    async with serving(silent) as (url, _):
        pass  # closed: nothing listens on its port now
    async with client(url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


def test_https_and_proxied_urls_keep_httpx_own_transport(monkeypatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert isinstance(_lean_transport("http://tagger:8000"), StreamTransport)
    assert _lean_transport("https://tagger") is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    assert _lean_transport("http://tagger:8000") is None
    monkeypatch.setenv("NO_PROXY", "tagger")
    assert isinstance(_lean_transport("http://tagger:8000"), StreamTransport)
