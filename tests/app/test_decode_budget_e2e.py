"""The decode memory budget over real uvicorn: large decodes queue for it and are all
answered, small images pass them by, and an image over the whole budget is refused from its
header (issue 10: 4 clients of the worst accepted image must not cost more than +300 MB)."""

from __future__ import annotations

import asyncio
import time
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
MIB = 1 << 20
GAUGE = "tagger_decode_bytes_in_use"


def rgb_png(side: int) -> bytes:
    """side x side RGB, a light square on black: a few KB that decode to 4 bytes a pixel."""
    row = (
        bytes(3 * side // 4)
        + b"\xc8" * (3 * side // 2)
        + bytes(3 * side - 3 * side // 4 - 3 * side // 2)
    )
    return image_bombs.png(side, side, row, colour_type=2)


async def _gauge_peak(server: Server, stop: asyncio.Event) -> float:
    peak = 0.0
    while not stop.is_set():
        peak = max(peak, server.metric(GAUGE))
        await asyncio.sleep(0.002)
    return peak


async def test_large_decodes_queue_for_the_budget_and_small_images_pass_them(
    shared_root: Path, evaluated: Evaluated
) -> None:
    # A 3000x3000 RGB PNG is estimated at ~72 MiB: a 100 MiB budget runs one at a time.
    settings = make_settings(shared_root, max_decode_bytes=100 * MIB, decode_threads=4)
    large, small = rgb_png(3000), encode(evaluated.images[0])
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            stop = asyncio.Event()
            watcher = asyncio.create_task(_gauge_peak(server, stop))
            bulk = [
                asyncio.create_task(http.post(URL, content=large, headers=PNG)) for _ in range(6)
            ]
            await server.until(lambda: server.metric(GAUGE) > 0)
            started = time.monotonic()
            quick = await http.post(URL, content=small, headers=PNG)
            small_took = time.monotonic() - started
            answers = await asyncio.gather(*bulk)
            stop.set()
            peak = await watcher
    assert quick.status_code == 200, quick.text
    assert small_took < 1.0, f"a 28x28 image took {small_took:.2f} s behind large decodes"
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert 0 < peak <= 100 * MIB, f"decodes held {peak / MIB:.0f} MiB at once"
    assert server.metric(GAUGE) == 0


async def test_an_image_over_the_whole_budget_is_refused_from_its_header(
    shared_root: Path, evaluated: Evaluated
) -> None:
    """6000x6000 RGBA PNG (150 KB): ~200 MiB estimated, over the default 192 MiB budget."""
    data = image_bombs.png(6000, 6000, b"\x10\x20\x30\xff" * 6000, colour_type=6)
    with run_server(make_settings(shared_root)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            started = time.monotonic()
            answer = await http.post(URL, content=data, headers=PNG)
            took = time.monotonic() - started
            ok = await http.post(URL, content=rgb_png(3000), headers=PNG)
    assert answer.status_code == 413, answer.text
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "request_id"}
    assert error["code"] == "image_too_large"
    assert "MiB" in error["message"] and "TAGGER_MAX_DECODE_BYTES" in error["message"]
    assert took < 0.5, f"refused after {took:.2f} s"
    assert ok.status_code == 200, ok.text  # 3000x3000 RGB (~72 MiB) is within the default
    assert server.metric("tagger_images_rejected_total", reason="image_too_large") == 1


async def test_a_deadline_that_passes_while_waiting_for_budget_answers_504(
    shared_root: Path, evaluated: Evaluated, trained_store: Any
) -> None:
    """Six 16-bit 6000x6000 PNGs, one decode at a time, a 1 s deadline: the last ones wait."""
    settings = make_settings(shared_root, max_decode_bytes=150 * MIB, request_timeout_ms=1000)
    data = image_bombs.deep_png()
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            started = time.monotonic()
            answers = await asyncio.gather(
                *(http.post(URL, content=data, headers=PNG) for _ in range(6))
            )
            took = time.monotonic() - started
            await server.until(lambda: server.metric(GAUGE) == 0)
            after = await http.post(URL, content=encode(evaluated.images[1]), headers=PNG)
    codes = [a.json()["error"]["code"] for a in answers if a.status_code != 200]
    assert codes and set(codes) == {"deadline_exceeded"}, [a.text for a in answers]
    assert {a.status_code for a in answers} <= {200, 504}
    assert took < 3.0, f"answered after {took:.1f} s for a 1 s deadline"
    assert after.status_code == 200, after.text
    label = trained_store.metadata.labels[int(np.argmax(evaluated.probabilities[1]))]
    assert after.json()["predictions"][0]["label"] == label
