"""TaggerClient / AsyncTaggerClient against a real server: chunking within the server's limits,
results in order, every input kind, typed errors, no retry of a 4xx."""

from __future__ import annotations

import io
import math
from pathlib import Path

import httpx
import pytest
from PIL import Image

from client import (
    AsyncTaggerClient,
    ConnectionFailed,
    ImageRejected,
    RequestRejected,
    TaggerClient,
)
from tests.app.app_helpers import Server
from tests.client.client_helpers import MAX_IMAGES, Catalogue

CLASSIFY = {"route": "/v1/models/{model}/classify", "method": "POST"}


def requests_answered(server: Server, status: int) -> float:
    return server.metric("tagger_requests_total", **CLASSIFY, status=str(status))


class CountingTransport(httpx.AsyncHTTPTransport):
    """Counts the requests the client really sends (attempts included)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()  # the multipart body, kept for the test to inspect
        self.sent.append(request)
        return await super().handle_async_request(request)


async def test_100_images_go_as_requests_of_at_most_the_server_limit_in_order(
    server: Server, catalogue: Catalogue
) -> None:
    paths = catalogue.paths[:100]
    before = requests_answered(server, 200)
    transport = CountingTransport()
    async with AsyncTaggerClient(server.url, concurrency=4, transport=transport) as client:
        assert (await client.limits()).max_images_per_request == MAX_IMAGES  # read, not assumed
        results = await client.classify(paths, top_k=3)

    classify_requests = [r for r in transport.sent if r.url.path.endswith("/classify")]
    assert len(classify_requests) == math.ceil(100 / MAX_IMAGES)
    assert all(r.content.count(b'name="file"') <= MAX_IMAGES for r in classify_requests)
    assert requests_answered(server, 200) - before == len(classify_requests)
    assert len(results) == 100
    assert all(r.ok and r.model == "fashion" and len(r.predictions) == 3 for r in results)
    # In input order: each image's label is the one evaluation gave that image.
    expected = catalogue.probabilities[:100].argmax(axis=1)
    labels = server.manager.served.model.labels
    assert [r.label for r in results] == [labels[i] for i in expected]


def test_the_sync_client_takes_paths_bytes_files_and_pil_images(
    server: Server, catalogue: Catalogue
) -> None:
    path = catalogue.paths[0]
    data = Path(path).read_bytes()
    with TaggerClient(server.url) as client:
        assert client.ready()
        assert [m["name"] for m in client.models()] == ["fashion"]
        with open(path, "rb") as handle:
            results = client.classify(
                [path, data, handle, Image.open(io.BytesIO(data))], "fashion", version=1
            )
    assert len({r.predictions for r in results}) == 1  # the same image four ways, same answer
    assert results[0].version == 1


async def test_a_bad_image_fails_alone_and_a_4xx_is_never_retried(
    server: Server, catalogue: Catalogue, tmp_path
) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(Path(catalogue.paths[0]).read_bytes()[:60])  # a PNG cut short
    images = [*catalogue.paths[:5], str(corrupt), *catalogue.paths[5:7], str(tmp_path / "gone.png")]
    transport = CountingTransport()
    async with AsyncTaggerClient(server.url, transport=transport) as client:
        results = await client.classify(images)
        assert [r.ok for r in results] == [True] * 5 + [False, True, True, False]
        assert results[5].error.code == "corrupt_image", results[5].error
        assert results[5].error.status == 400 and results[5].error.request_id
        assert results[8].error.code == "unreadable_input"  # never sent
        transport.sent.clear()
        with pytest.raises(RequestRejected) as raised:
            await client.classify(catalogue.paths[:1], "no-such-model")
    assert len(transport.sent) == 1  # a 404 is final
    assert raised.value.status == 404 and raised.value.code == "model_not_found"
    assert raised.value.request_id


async def test_an_unreachable_server_fails_clearly_after_the_configured_attempts() -> None:
    transport = CountingTransport()
    url = "http://127.0.0.1:9"  # discard: nothing listens there
    async with AsyncTaggerClient(url, retries=2, backoff_s=0.01, transport=transport) as client:
        assert not await client.ready()
        transport.sent.clear()
        with pytest.raises(ConnectionFailed) as raised:
            await client.classify([b"image"])
    assert len(transport.sent) == 3
    assert "could not reach http://127.0.0.1:9 after 3 attempts" in str(raised.value)


async def test_an_image_over_the_upload_limit_is_refused_alone(
    store_root, catalogue: Catalogue
) -> None:
    from tests.app.app_helpers import make_settings, run_server

    settings = make_settings(store_root, max_upload_bytes=20_000)
    big = b"\x89PNG" + b"\0" * 30_000
    with run_server(settings) as small:
        async with AsyncTaggerClient(small.url) as client:
            results = await client.classify([catalogue.paths[0], big, catalogue.paths[1]])
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, ImageRejected)
    assert results[1].error.code == "upload_too_large"
