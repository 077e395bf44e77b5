"""The HTTP transport over real uvicorn: slow and abusive clients are timed out or refused with
a JSON error, never hold the service, and a client that hangs up is a 499, not a 500."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from app_helpers import Evaluated, Server, encode, make_settings, run_server

ASYNC = pytest.mark.asyncio(loop_scope="session")

URL = "/v1/models/fashion/classify"
ROUTE = {"route": "/v1/models/{model}/classify", "method": "POST"}
HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.5
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS = 50
MARGIN_S = 2.0  # generous: a shared 2-core machine


@pytest.fixture(scope="module")
def transport_server(shared_root: Path) -> Iterator[Server]:
    settings = make_settings(
        shared_root,
        header_timeout_s=HEADER_TIMEOUT_S,
        body_timeout_s=BODY_TIMEOUT_S,
        max_header_bytes=MAX_HEADER_BYTES,
        max_headers=MAX_HEADERS,
    )
    with run_server(settings) as handle:
        yield handle


def _address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _read_answer(sock: socket.socket, timeout_s: float) -> tuple[int, dict[str, str], bytes]:
    """Everything the server sends until it closes; the status, headers and body."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        raise AssertionError(f"no close within {timeout_s} s; got {data[:200]!r}") from None
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line, "the connection closed without an answer"
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines if line)}
    return int(status_line.split()[1]), headers, body


def _assert_error(body: bytes, code: str) -> None:
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert error["message"]
    assert set(error) == {"code", "message", "request_id"}


def test_incomplete_headers_get_408_and_the_connection_is_closed(
    transport_server: Server,
) -> None:
    with socket.create_connection(_address(transport_server)) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        status, headers, body = _read_answer(sock, HEADER_TIMEOUT_S + MARGIN_S)
        elapsed = time.monotonic() - started
    assert status == 408
    assert headers["connection"] == "close"
    _assert_error(body, "header_timeout")
    assert HEADER_TIMEOUT_S * 0.9 <= elapsed < HEADER_TIMEOUT_S + MARGIN_S
    assert transport_server.metric("tagger_http_refusals_total", reason="header_timeout") >= 1


def test_the_head_timeout_restarts_after_each_answer_on_a_keep_alive_connection(
    transport_server: Server,
) -> None:
    with socket.create_connection(_address(transport_server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(MARGIN_S)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        time.sleep(HEADER_TIMEOUT_S / 2)  # idle, within the limit
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        status, _, body = _read_answer(sock, HEADER_TIMEOUT_S + MARGIN_S)
        elapsed = time.monotonic() - started
    assert status == 408
    _assert_error(body, "header_timeout")
    assert elapsed < HEADER_TIMEOUT_S  # counted from the end of the answer, not the new bytes


def test_malformed_http_gets_a_json_400(transport_server: Server) -> None:
    with socket.create_connection(_address(transport_server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n")
        status, headers, body = _read_answer(sock, MARGIN_S)
    assert status == 400
    assert headers["connection"] == "close"
    _assert_error(body, "invalid_http")
    assert json.loads(body)["error"]["request_id"] == headers["x-request-id"]


def test_a_huge_header_is_refused_with_431_as_soon_as_it_passes_the_limit(
    transport_server: Server,
) -> None:
    with socket.create_connection(_address(transport_server)) as sock:
        started = time.monotonic()
        sock.settimeout(5)
        # 4 MiB of one header; the server stops reading long before the end.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (4 << 20))
        status, headers, body = _read_answer(sock, MARGIN_S)
        elapsed = time.monotonic() - started
    assert status == 431
    assert headers["connection"] == "close"
    _assert_error(body, "headers_too_large")
    assert elapsed < MARGIN_S


def test_too_many_headers_are_refused_with_431(transport_server: Server) -> None:
    fields = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
    with socket.create_connection(_address(transport_server)) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        status, _, body = _read_answer(sock, MARGIN_S)
        elapsed = time.monotonic() - started
    assert status == 431
    _assert_error(body, "headers_too_large")
    assert str(MAX_HEADERS) in json.loads(body)["error"]["message"]
    assert elapsed < MARGIN_S
    assert transport_server.metric("tagger_http_refusals_total", reason="headers_too_large") >= 1


def test_a_body_that_stalls_gets_408_and_frees_its_slot(transport_server: Server) -> None:
    server = transport_server
    with socket.create_connection(_address(server)) as sock:
        started = time.monotonic()
        sock.sendall(
            f"POST {URL} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            "Content-Length: 1000\r\n\r\n".encode()
            + b"\x89PNG"
        )
        status, headers, body = _read_answer(sock, BODY_TIMEOUT_S + MARGIN_S)
        elapsed = time.monotonic() - started
    assert status == 408
    assert headers["connection"] == "close"
    _assert_error(body, "body_timeout")
    assert json.loads(body)["error"]["request_id"] == headers["x-request-id"]
    assert BODY_TIMEOUT_S * 0.9 <= elapsed < BODY_TIMEOUT_S + MARGIN_S
    server.wait_for(lambda: server.metric("tagger_requests_in_flight") == 0, 5)
    assert server.app.state.admission.in_flight == 0
    assert server.metric("tagger_requests_total", **ROUTE, status="408") >= 1
    assert server.metric("tagger_requests_total", **ROUTE, status="500") == 0


def test_a_slow_body_to_a_route_that_never_reads_it_is_still_timed_out(
    transport_server: Server,
) -> None:
    with socket.create_connection(_address(transport_server)) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
        status, _, _ = _read_answer(sock, BODY_TIMEOUT_S + MARGIN_S)
        elapsed = time.monotonic() - started
    assert status == 405  # answered at once; the connection is closed when the body stalls
    assert elapsed < BODY_TIMEOUT_S + MARGIN_S


@ASYNC
async def test_slow_bodies_at_the_in_flight_limit_do_not_refuse_normal_requests(
    shared_root: Path, evaluated: Evaluated
) -> None:
    limit = 4
    settings = make_settings(shared_root, max_in_flight_requests=limit, body_timeout_s=60)
    with run_server(settings) as server:
        host, port = _address(server)
        trickling = []
        for _ in range(limit * 3):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"POST {URL} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                "Content-Length: 100000\r\n\r\n".encode()
                + b"\x89"
            )
            trickling.append((reader, writer))
        try:
            await asyncio.sleep(0.3)  # every slow request has arrived
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
                answers = [await http.post(URL, files=files) for _ in range(5)]
            assert [a.status_code for a in answers] == [200] * 5, answers[0].text
            assert server.metric("tagger_images_rejected_total", reason="overloaded") == 0
        finally:
            for _, writer in trickling:
                writer.close()
            # Closed before the server stops: its graceful shutdown would wait for them (10 s).
            await asyncio.gather(*(writer.wait_closed() for _, writer in trickling))


@ASYNC
async def test_a_client_that_hangs_up_mid_body_is_a_499_not_a_500(
    shared_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings(shared_root)
    with run_server(settings) as server:
        host, port = _address(server)
        _, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"POST {URL} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            "Content-Length: 1000\r\n\r\n".encode()
            + b"\x89PNG"
        )
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.close()
        await server.until(
            lambda: server.metric("tagger_requests_total", **ROUTE, status="499") == 1, 10
        )
        assert server.metric("tagger_requests_total", **ROUTE, status="500") == 0
        assert server.metric("tagger_requests_in_flight") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    access = [r for r in caplog.records if r.name == "app.access" and r.__dict__["status"] == 499]
    assert len(access) == 1
    assert access[0].levelno == logging.INFO
    assert access[0].__dict__["error_code"] == "client_disconnected"
