"""Hostile JSON bodies are refused while parsing, in milliseconds, as documented 4xx errors,
and do not stall the other clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from app_helpers import Evaluated, Server, encode, make_settings, run_server
from test_errors_e2e import assert_error

pytestmark = pytest.mark.asyncio(loop_scope="session")

URL = "/v1/models/fashion/classify"
JSON = {"content-type": "application/json"}
TEN_MB = 10 * 1024 * 1024
# 900,000 empty instances: 9.9 MB, under the upload limit, 28,000 times the image limit.
MANY_INSTANCES = b'{"instances":[' + b",".join([b'{"b64":""}'] * 900_000) + b"]}"


@pytest.fixture(scope="module")
def big_server(shared_root: Path) -> Iterator[Server]:
    """The default upload and image limits (10 MB, 32 images)."""
    settings = make_settings(shared_root, max_upload_bytes=TEN_MB, max_images_per_request=32)
    with run_server(settings) as handle:
        yield handle


async def test_900k_instances_are_refused_in_milliseconds_without_stalling_others(
    big_server: Server,
) -> None:
    assert len(MANY_INSTANCES) < TEN_MB
    latencies: list[float] = []
    done = asyncio.Event()

    async def ping(http: httpx.AsyncClient) -> None:
        while not done.is_set():
            started = time.perf_counter()
            assert (await http.get("/healthz")).status_code == 200
            latencies.append(time.perf_counter() - started)

    async with (
        httpx.AsyncClient(base_url=big_server.url, timeout=60) as hostile,
        httpx.AsyncClient(base_url=big_server.url, timeout=60) as other,
    ):
        await other.get("/healthz")  # connected before the measurement
        pinger = asyncio.create_task(ping(other))
        refusals = []
        for _ in range(3):
            started = time.perf_counter()
            response = await hostile.post(URL, content=MANY_INSTANCES, headers=JSON)
            refusals.append(time.perf_counter() - started)
            assert_error(response, 413, "too_many_images", "limit is 32")
        done.set()
        await pinger
    # Before: ~2 s each on an idle machine, and the other client waited as long.
    assert max(refusals) < 0.75, refusals
    assert len(latencies) >= 3
    assert max(latencies) < 0.5, max(latencies)
    assert big_server.metric("tagger_images_rejected_total", reason="too_many_images") >= 3


async def test_large_arrays_of_small_values_are_refused_as_they_are_counted(
    big_server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=big_server.url, timeout=60) as http:
        for value in (b"null", b"1", b'""', b"[]"):
            body = b'{"pad":[' + b",".join([value] * (TEN_MB // (len(value) + 1) - 8)) + b"]}"
            started = time.perf_counter()
            response = await http.post(URL, content=body, headers=JSON)
            elapsed = time.perf_counter() - started
            assert_error(response, 413, "json_too_large", "4096 values")
            assert elapsed < 0.75, (value, elapsed)


async def test_deep_nesting_and_huge_numbers_are_400_not_500(client: httpx.AsyncClient) -> None:
    for depth in (33, 2_000, 20_000):
        for opening, closing in ((b"[", b"]"), (b'{"a":', b"}")):
            body = opening * depth + b"1" + closing * depth
            response = await client.post(URL, content=body, headers=JSON)
            assert_error(response, 400, "json_too_deep", "deeper than 32 levels")
    huge = b'{"instances": [{"b64": "QUFB"}], "n": ' + b"7" * 4_301 + b"}"
    assert_error(await client.post(URL, content=huge, headers=JSON), 400, "malformed_json")
    assert (await client.get("/healthz")).status_code == 200


async def test_nesting_within_the_limit_and_escapes_still_parse(
    client: httpx.AsyncClient, evaluated: Evaluated
) -> None:
    import base64

    b64 = base64.b64encode(encode(evaluated.images[0])).decode()
    nested = "[" * 29 + "1" + "]" * 29  # the document is 3 deep, this adds 29
    escaped = b64.replace("/", "\\/")  # what PHP's json_encode sends
    body = f'{{"extra": {nested}, "note": "a \\"quoted\\" \\\\ text", '
    body += f'"instances": [{{"b64": "{escaped}"}}]}}'
    response = await client.post(URL, content=body.encode(), headers=JSON)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 1


ADVERSARIAL_JSON: dict[str, bytes] = {
    "empty": b"",
    "whitespace": b" \n\t ",
    "null": b"null",
    "number": b"1",
    "string": b'"instances"',
    "array": b"[]",
    "object": b"{}",
    "truncated": b'{"instances": [{"b64": "QUFB"',
    "unterminated string": b'{"instances": [{"b64": "QUFB',
    "trailing garbage": b'{"instances": []} x',
    "trailing comma": b'{"instances": [{"b64": "QUFB"},]}',
    "single quotes": b"{'instances': []}",
    "NaN": b'{"instances": NaN}',
    "Infinity": b'{"n": Infinity, "instances": []}',
    "bad escape": b'{"instances": [{"b64": "\\x41"}]}',
    "lone surrogate": b'{"instances": [{"b64": "\\ud800"}]}',
    "invalid utf-8": b'{"instances": [{"b64": "\xff\xfe"}]}',
    "utf-16": '{"instances": []}'.encode("utf-16"),
    "bom": b'\xef\xbb\xbf{"instances": []}',
    "nul byte": b'{"instances": [{"b64": "QU\x00FB"}]}',
    "instances null": b'{"instances": null}',
    "instances object": b'{"instances": {"b64": "QUFB"}}',
    "instances string": b'{"instances": "QUFB"}',
    "instance null": b'{"instances": [null]}',
    "instance list": b'{"instances": [["QUFB"]]}',
    "b64 number": b'{"instances": [{"b64": 12345}]}',
    "b64 null": b'{"instances": [{"b64": null}]}',
    "b64 object": b'{"instances": [{"b64": {"b64": "QUFB"}}]}',
    "b64 missing": b'{"instances": [{"image": "QUFB"}]}',
    "b64 empty": b'{"instances": [{"b64": ""}]}',
    "b64 not base64": b'{"instances": [{"b64": "!!!!"}]}',
    "b64 bad padding": b'{"instances": [{"b64": "QUF"}]}',
    "b64 not an image": b'{"instances": [{"b64": "aGVsbG8gd29ybGQ="}]}',
    "b64 truncated png": b'{"instances": [{"b64": "iVBORw0KGgoAAAANSUhEUgAA"}]}',
    "five instances": b'{"instances": [' + b",".join([b'{"b64": "QUFB"}'] * 5) + b"]}",
    "deep in an instance": b'{"instances": [{"b64": "QUFB", "x": ' + b"[" * 40 + b"]" * 40 + b"}]}",
    "many keys": b"{" + b",".join(b'"k%d": 0' % i for i in range(5_000)) + b"}",
    "huge float": b'{"instances": [], "n": 1e999999}',
    "huge negative int": b'{"instances": [], "n": -' + b"9" * 5_000 + b"}",
}


async def test_adversarial_json_corpus_is_refused_in_the_error_shape(
    client: httpx.AsyncClient, evaluated: Evaluated
) -> None:
    for name, body in ADVERSARIAL_JSON.items():
        response = await client.post(URL, content=body, headers=JSON)
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        error = response.json()["error"]
        assert error["code"] and error["message"], name
        assert error["request_id"] == response.headers["x-request-id"], name
    files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    assert (await client.post(URL, files=files)).status_code == 200  # still serving
