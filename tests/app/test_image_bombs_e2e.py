"""Small files that decode huge, over real uvicorn: quick answers, and the service keeps
classifying (issue 10, failure 3)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import image_bombs
import numpy as np
import pytest
from app_helpers import Evaluated, Server, encode, make_settings, run_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

URL = "/v1/models/fashion/classify"
PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def default_server(shared_root: Path) -> Iterator[Server]:
    """The default limits: 40M pixels, 10 MB uploads, a 10 s deadline."""
    with run_server(make_settings(shared_root)) as handle:
        yield handle


async def _still_classifies(http: httpx.AsyncClient, evaluated: Evaluated, labels: list[str]):
    for pixels, expected in zip(evaluated.images[:5], evaluated.probabilities[:5], strict=True):
        started = time.monotonic()
        response = await http.post(URL, files={"file": ("x.png", encode(pixels), "image/png")})
        assert response.status_code == 200, response.text
        assert response.json()["predictions"][0]["label"] == labels[int(np.argmax(expected))]
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (image_bombs.wide_png, 200, None),  # was 504 after 20 s (7 s and +1.6 GB of decode)
        (image_bombs.deep_png, 200, None),  # was 200 after ~2 s and +0.9 GB
        (image_bombs.tall_png, 422, "extreme_aspect_ratio"),  # was 500 (a 1.4 PiB canvas)
    ],
)
async def test_the_worst_accepted_images_answer_quickly(
    default_server: Server,
    evaluated: Evaluated,
    trained_store: Any,
    make: Any,
    status: int,
    code: str | None,
) -> None:
    async with httpx.AsyncClient(base_url=default_server.url, timeout=60) as http:
        data = make()
        started = time.monotonic()
        answers = await asyncio.gather(
            *(http.post(URL, content=data, headers=PNG) for _ in range(4))
        )
        took = time.monotonic() - started
        for answer in answers:
            assert answer.status_code == status, answer.text
            if code is not None:
                assert answer.json()["error"]["code"] == code
                assert set(answer.json()["error"]) == {"code", "message", "request_id"}
        assert took < 8.0, f"4 concurrent uploads took {took:.1f} s"
        await _still_classifies(http, evaluated, trained_store.metadata.labels)


async def test_a_request_whose_deadline_passes_while_decoding_answers_504_promptly(
    shared_root: Path, evaluated: Evaluated, trained_store: Any
) -> None:
    """32 16-bit 6000x6000 PNGs in one request: seconds of decoding, a 0.5 s deadline."""
    settings = make_settings(shared_root, request_timeout_ms=500)
    files = [("file", (f"deep{i}.png", image_bombs.deep_png(), "image/png")) for i in range(32)]
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            started = time.monotonic()
            response = await http.post(URL, files=files)
            took = time.monotonic() - started
            assert response.status_code == 504, response.text
            assert response.json()["error"]["code"] == "deadline_exceeded"
            assert took < 2.5, f"504 after {took:.1f} s for a 0.5 s deadline"
            # The abandoned decodes stop: the pool is free for the next request at once.
            await _still_classifies(http, evaluated, trained_store.metadata.labels)
