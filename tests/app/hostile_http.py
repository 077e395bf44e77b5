"""A raw HTTP/1.1 client on asyncio streams, for requests httpx refuses to send.

Each request goes out as the exact bytes given (bad Content-Length, raw header bytes, unknown
methods, unencoded paths); the answer's status line, headers and body are parsed here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

HOST = b"127.0.0.1"


@dataclass(frozen=True)
class Answer:
    """What came back: a status with headers and body, or `failure` (timeout, no answer)."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    failure: str = ""
    seconds: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body)

    def summary(self) -> str:
        if self.failure:
            return self.failure
        text = self.body[:300].decode("utf-8", "replace")
        return (
            f"{self.status} in {self.seconds:.2f} s, {self.headers.get('content-type', '')}: {text}"
        )


def request_bytes(
    method: str | bytes,
    target: str | bytes,
    headers: Sequence[tuple[str | bytes, str | bytes]] = (),
    body: bytes = b"",
    *,
    length: bool = True,
    close: bool = True,
) -> bytes:
    """One request as bytes: Host, `Connection: close` and Content-Length unless told not to."""
    method_b = _latin1(method)
    lines = [method_b + b" " + _latin1(target) + b" HTTP/1.1", b"Host: " + HOST]
    lines += [_latin1(name) + b": " + _latin1(value) for name, value in headers]
    if close:
        lines.append(b"Connection: close")
    if length and (body or method_b == b"POST"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _latin1(text: str | bytes) -> bytes:
    return text.encode("latin-1") if isinstance(text, str) else text


def httpx_request_bytes(method: str, target: str, **kwargs: Any) -> bytes:
    """A well-formed request as httpx would encode it (multipart, JSON, params), as bytes."""
    request = httpx.Request(method, "http://127.0.0.1" + target, **kwargs)
    body = request.read()
    headers = [
        (name, value)
        for name, value in request.headers.items()
        if name.lower() not in ("host", "content-length", "connection")
    ]
    url = request.url
    path = url.raw_path.decode("ascii")
    return request_bytes(method, path, headers, body)


async def exchange(
    host: str, port: int, data: bytes, timeout_s: float, *, head: bool = False
) -> Answer:
    """Send `data`, read one response; a timeout or a close before any answer is a failure."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(data)
                await writer.drain()
                answer = await _read_response(reader, head)
            finally:
                writer.close()
    except TimeoutError:
        return Answer(failure=f"no answer within {timeout_s:g} s")
    except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
        return Answer(failure=f"connection closed without an answer: {exc!r}")
    return Answer(answer.status, answer.headers, answer.body, seconds=loop.time() - started)


async def _read_response(reader: asyncio.StreamReader, head: bool) -> Answer:
    raw = await reader.readuntil(b"\r\n\r\n")
    while raw.split(b" ", 2)[1].startswith(b"1"):  # 100 Continue: the answer follows
        raw = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = raw.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if head or status in (204, 304):
        return Answer(status, headers)
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.read()
    return Answer(status, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
