"""Admission control over real uvicorn: overload is refused on arrival, not after the queue."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from app_helpers import LIMIT_BYTES, Evaluated, Server, encode, make_settings, run_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

URL = "/v1/models/fashion/classify"
DEPTH = "tagger_queue_depth"
# Far longer than a refusal takes, far shorter than the gate's hold: an answer within this
# while the model is still held cannot have waited for the model.
ANSWER_WITHOUT_MODEL_S = 2.0


def send(http: httpx.AsyncClient, pixels: np.ndarray) -> asyncio.Task:
    files = {"file": ("x.png", encode(pixels), "image/png")}
    return asyncio.ensure_future(http.post(URL, files=files))


async def test_past_the_in_flight_limit_a_request_is_refused_without_waiting_for_the_model(
    shared_root, evaluated: Evaluated
) -> None:
    settings = make_settings(
        shared_root,
        max_batch_size=2,
        max_queue=4,
        max_images_per_request=4,
        max_in_flight_requests=3,
        retry_after_s=2,
    )
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            server.gate.hold()
            held = [send(http, evaluated.images[0])]
            await server.until(server.gate.entered.is_set)  # one in the model
            held += [send(http, evaluated.images[i]) for i in (1, 2)]
            await server.until(lambda: server.metric(DEPTH, model="fashion") == 2)

            refused = await asyncio.wait_for(
                send(http, evaluated.images[3]), ANSWER_WITHOUT_MODEL_S
            )
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "2"
            error = refused.json()["error"]
            assert error["code"] == "overloaded"
            assert "3 requests are already in progress" in error["message"]
            assert error["request_id"] == refused.headers["x-request-id"]
            assert not any(task.done() for task in held)  # the model really was still held
            assert server.metric(DEPTH, model="fashion") == 2  # the refused one never queued
            assert server.metric("tagger_images_rejected_total", reason="overloaded") == 1
            refused_label = {"route": "/v1/models/{model}/classify", "method": "POST"}
            assert server.metric("tagger_requests_total", **refused_label, status="503") == 1

            server.gate.release()
            answered = await asyncio.gather(*held)
            assert [r.status_code for r in answered] == [200, 200, 200]
            # The slots are given back: the service takes new work again.
            after = await http.post(URL, files={"file": ("x.png", encode(evaluated.images[4]))})
            assert after.status_code == 200
        assert server.metric("tagger_batch_size_sum", model="fashion") == 4  # never the refused


async def test_a_declared_content_length_over_the_limit_is_refused_before_the_body(
    server: Server,
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"POST {URL} HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {LIMIT_BYTES + 1}\r\n\r\n".encode()
        )
        await writer.drain()
        # No body is ever sent: an answer proves the limit was applied to the header.
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_WITHOUT_MODEL_S)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        assert status_line.split()[1] == "413"
        headers = dict(line.split(": ", 1) for line in header_lines if line)
        headers = {name.lower(): value for name, value in headers.items()}
        body = await reader.readexactly(int(headers["content-length"]))
        error = json.loads(body)["error"]
        assert error["code"] == "upload_too_large"
        assert str(LIMIT_BYTES) in error["message"]
    finally:
        writer.close()


# The body budget: request body bytes received and held at once.
UPLOAD_LIMIT = 200_000
BUFFER_LIMIT = 3 * UPLOAD_LIMIT
BIG = 190_000
ALL_BUT_ONE = b"\x89PNG" + b"a" * (BIG - 5)  # a large upload that stalls before its last byte
HELD = 3 * (BIG - 1)  # three of them fill the budget but for 30,003 bytes
BUFFERED = "tagger_buffered_body_bytes"
ROUTE = {"route": "/v1/models/{model}/classify", "method": "POST"}


async def _open_upload(
    server: Server, head: str, first_bytes: bytes = b""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection that has sent a classify request's headers (`head` holds the framing
    header lines) and `first_bytes` of its body."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {URL} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n{head}\r\n".encode()
        + first_bytes
    )
    await writer.drain()
    return reader, writer


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines if line)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, json.loads(body)


def _server_errors(server: Server) -> dict[str, float]:
    """Answers counted with a 5xx status other than 503, by status."""
    counts: dict[str, float] = {}
    for family in server.registry.collect():
        for sample in family.samples:
            status = sample.labels.get("status", "")
            if sample.name == "tagger_requests_total" and status[:1] == "5" and status != "503":
                counts[status] = counts.get(status, 0) + sample.value
    return counts


def _budget_settings(shared_root, **overrides):
    return make_settings(
        shared_root,
        max_upload_bytes=UPLOAD_LIMIT,
        max_buffered_body_bytes=BUFFER_LIMIT,
        retry_after_s=2,
        **overrides,
    )


async def test_large_uploads_that_fill_the_body_budget_refuse_the_next_large_one_not_a_small_one(
    shared_root, evaluated: Evaluated
) -> None:
    with run_server(_budget_settings(shared_root, body_timeout_s=60)) as server:
        slow = [
            await _open_upload(server, f"Content-Length: {BIG}\r\n", ALL_BUT_ONE) for _ in range(3)
        ]
        try:
            await server.until(lambda: server.metric(BUFFERED) == HELD, 10)

            # Headers only: an answer proves the refusal came before any of the body was read.
            reader, writer = await _open_upload(server, f"Content-Length: {BIG}\r\n")
            status, headers, body = await asyncio.wait_for(
                _read_answer(reader), ANSWER_WITHOUT_MODEL_S
            )
            writer.close()
            assert status == 503, body
            assert headers["retry-after"] == "2"
            assert body["error"]["code"] == "overloaded"
            assert str(BUFFER_LIMIT) in body["error"]["message"]
            assert server.metric(BUFFERED) == HELD

            # A small upload still fits in what is left.
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
                small = await http.post(URL, files=files)
            assert small.status_code == 200, small.text
            await server.until(lambda: server.metric(BUFFERED) == HELD, 10)

            # A chunked body is charged as it arrives, and refused once it no longer fits.
            reader, writer = await _open_upload(
                server, "Transfer-Encoding: chunked\r\n", _chunk(b"a" * 20_000)
            )
            await server.until(lambda: server.metric(BUFFERED) == HELD + 20_000, 10)
            writer.write(_chunk(b"a" * 20_000))
            status, headers, body = await asyncio.wait_for(
                _read_answer(reader), ANSWER_WITHOUT_MODEL_S
            )
            writer.close()
            assert status == 503, body
            assert body["error"]["code"] == "overloaded"
            await server.until(lambda: server.metric(BUFFERED) == HELD, 10)
            assert server.metric("tagger_images_rejected_total", reason="overloaded") == 2
        finally:
            for _, writer in slow:
                writer.close()
        await server.until(lambda: server.metric(BUFFERED) == 0, 10)
        assert server.app.state.admission.in_flight == 0
        assert _server_errors(server) == {}


async def test_the_body_budget_is_given_back_whatever_becomes_of_the_request(
    shared_root, evaluated: Evaluated
) -> None:
    body_timeout_s = 2.0
    with run_server(_budget_settings(shared_root, body_timeout_s=body_timeout_s)) as server:
        finished = await _open_upload(server, f"Content-Length: {BIG}\r\n", ALL_BUT_ONE)
        hung_up = await _open_upload(server, f"Content-Length: {BIG}\r\n", ALL_BUT_ONE)
        stalled = await _open_upload(server, f"Content-Length: {BIG}\r\n", ALL_BUT_ONE)
        await server.until(lambda: server.metric(BUFFERED) == HELD, 10)
        refused = await _open_upload(server, f"Content-Length: {BIG}\r\n")
        assert (await _read_answer(refused[0]))[0] == 503
        refused[1].close()

        finished[1].write(b"x")  # the last byte: admitted, then not an image
        status, _, body = await _read_answer(finished[0])
        assert status == 415, body
        finished[1].close()
        hung_up[1].close()
        await server.until(
            lambda: server.metric("tagger_requests_total", **ROUTE, status="499") == 1, 10
        )
        await server.until(lambda: server.metric(BUFFERED) == BIG - 1, 10)  # only `stalled`

        # Past the upload limit, declared and streamed.
        declared = await _open_upload(server, f"Content-Length: {UPLOAD_LIMIT + 1}\r\n")
        assert (await _read_answer(declared[0]))[0] == 413
        declared[1].close()
        streamed = await _open_upload(
            server, "Transfer-Encoding: chunked\r\n", _chunk(b"a" * (UPLOAD_LIMIT + 1))
        )
        assert (await _read_answer(streamed[0]))[0] == 413
        streamed[1].close()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
            assert (await http.post(URL, files=files)).status_code == 200

        assert (await _read_answer(stalled[0]))[0] == 408  # body timeout
        stalled[1].close()
        await server.until(lambda: server.metric(BUFFERED) == 0, 10)
        assert server.app.state.admission.in_flight == 0
        assert _server_errors(server) == {}


async def test_uploads_that_declare_the_whole_body_budget_but_trickle_refuse_no_one(
    shared_root, evaluated: Evaluated
) -> None:
    with run_server(_budget_settings(shared_root, body_timeout_s=60)) as server:
        declared = [BIG, BIG, BIG, BUFFER_LIMIT - 3 * BIG]  # the whole budget, declared
        slow = [await _open_upload(server, f"Content-Length: {n}\r\n", b"\x89") for n in declared]
        try:
            await server.until(lambda: server.metric("tagger_requests_in_flight") == 4, 10)
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
                answers = [await http.post(URL, files=files) for _ in range(5)]
            assert [a.status_code for a in answers] == [200] * 5, answers[0].text
            assert server.metric(BUFFERED) == len(slow)  # what they sent, not what they declared
        finally:
            for _, writer in slow:
                writer.close()
        await server.until(lambda: server.metric(BUFFERED) == 0, 10)
