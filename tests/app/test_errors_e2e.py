"""Every client mistake is a 4xx in the one error shape, saying what was wrong."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from app_helpers import LIMIT_BYTES, LIMIT_PIXELS, Evaluated, Server, encode
from PIL import Image

pytestmark = pytest.mark.asyncio(loop_scope="session")

URL = "/v1/models/fashion/classify"


def assert_error(response: httpx.Response, status: int, code: str, text: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert text in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def png(evaluated: Evaluated, index: int = 0) -> tuple[str, bytes, str]:
    return ("item.png", encode(evaluated.images[index]), "image/png")


async def test_unknown_model_version_and_alias_are_404(
    client: httpx.AsyncClient, evaluated: Evaluated
) -> None:
    files = {"file": png(evaluated)}
    assert_error(
        await client.post("/v1/models/shoes/classify", files=files),
        404,
        "model_not_found",
        "'shoes'",
    )
    assert_error(
        await client.post("/v1/models/fashion/versions/99/classify", files=files),
        404,
        "version_not_found",
        "99",
    )
    assert_error(
        await client.post("/v1/models/fashion/labels/nope/classify", files=files),
        404,
        "alias_not_found",
        "nope",
    )
    assert_error(await client.get("/v1/models/shoes"), 404, "model_not_found")
    assert_error(await client.get("/v1/models/fashion/versions/99"), 404, "version_not_found")
    assert_error(await client.get("/no/such/route"), 404, "not_found", "/no/such/route")


async def test_what_is_not_an_image_is_415(client: httpx.AsyncClient) -> None:
    text = {"file": ("notes.txt", b"hello, not an image", "text/plain")}
    assert_error(await client.post(URL, files=text), 415, "unsupported_media_type", "PNG")
    plain = await client.post(URL, content=b"abc", headers={"content-type": "text/plain"})
    assert_error(plain, 415, "unsupported_media_type", "multipart/form-data")


async def test_broken_and_empty_files_are_400(client: httpx.AsyncClient) -> None:
    noise = np.random.default_rng(1).integers(0, 255, (28, 28), np.uint8)
    truncated = encode(noise)[:400]  # the header parses, the pixel data stops short
    assert_error(
        await client.post(URL, files={"file": ("t.png", truncated, "image/png")}),
        400,
        "corrupt_image",
    )
    assert_error(
        await client.post(URL, files={"file": ("e.png", b"", "image/png")}),
        400,
        "empty_file",
        "empty",
    )
    assert_error(
        await client.post(URL, files={"image": ("e.png", b"x", "image/png")}),
        400,
        "missing_file",
        "'file'",
    )
    assert_error(
        await client.post(URL, data={"file": "not a file"}, files={"x": ("a", b"b")}),
        400,
        "missing_file",
        "file upload",
    )


async def test_uploads_over_the_limits_are_413(
    client: httpx.AsyncClient, server: Server, evaluated: Evaluated
) -> None:
    big = np.random.default_rng(0).integers(0, 255, (LIMIT_BYTES // 100, 200), np.uint8)
    noisy = encode(big, "BMP")
    assert len(noisy) > LIMIT_BYTES
    assert_error(
        await client.post(URL, files={"file": ("n.bmp", noisy, "image/bmp")}),
        413,
        "upload_too_large",
        str(LIMIT_BYTES),
    )

    async def chunks():  # no Content-Length: the size is checked as the body arrives
        for start in range(0, len(noisy), 65536):
            yield noisy[start : start + 65536]

    chunked = await client.post(URL, content=chunks(), headers={"content-type": "image/bmp"})
    assert_error(chunked, 413, "upload_too_large", str(LIMIT_BYTES))

    files = [("file", png(evaluated, i)) for i in range(5)]
    assert_error(await client.post(URL, files=files), 413, "too_many_images", "limit is 4")

    buffer = io.BytesIO()
    Image.new("L", (2000, LIMIT_PIXELS // 1000)).save(buffer, "PNG")  # small file, 2M pixels
    huge = {"file": ("huge.png", buffer.getvalue(), "image/png")}
    assert_error(await client.post(URL, files=huge), 413, "image_too_large", "pixels")
    rejected = server.metric("tagger_images_rejected_total", reason="image_too_large")
    assert rejected >= 1


async def test_bad_json_and_base64_are_400(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.post(URL, content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "malformed_json",
    )
    assert_error(await client.post(URL, json={"images": []}), 400, "invalid_body", "instances")
    assert_error(await client.post(URL, json={"instances": ["abc"]}), 400, "invalid_body")
    assert_error(
        await client.post(URL, json={"instances": [{"b64": "***"}]}),
        400,
        "bad_base64",
        "instances[0]",
    )
    assert_error(await client.post(URL, json={"instances": []}), 400, "missing_file")


async def test_top_k_out_of_range_is_422(client: httpx.AsyncClient, evaluated: Evaluated) -> None:
    files = {"file": png(evaluated)}
    for value in (0, 11):
        response = await client.post(URL, params={"top_k": value}, files=files)
        assert_error(response, 422, "invalid_top_k", "between 1 and 10")
    response = await client.post(URL, params={"top_k": "many"}, files=files)
    assert_error(response, 422, "invalid_request", "top_k")
    assert_error(
        await client.post("/v1/models/fashion/versions/x/classify", files=files),
        404,
        "invalid_version",
        "version",
    )
    ok = await client.post(URL, params={"top_k": 10}, files=files)
    assert len(ok.json()["predictions"]) == 10


async def test_one_bad_image_in_a_request_names_which(
    client: httpx.AsyncClient, evaluated: Evaluated
) -> None:
    files = [("file", png(evaluated)), ("file", ("second.png", b"", "image/png"))]
    assert_error(await client.post(URL, files=files), 400, "empty_file", "second.png")


async def test_a_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models/shoes", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["error"]["request_id"] == "abc-123"
