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
