"""`python -m app` as a real process under 4 clients of the worst accepted image: its RSS
rises by less than the issue's 300 MB bound (issue 10, failure 3: 4 clients used to take
+3.9 GB)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx
import image_bombs
from app_helpers import Evaluated, encode
from process_helpers import URL, start_app

MIB = 1 << 20
SIDE = 5854  # the largest square RGBA PNG the default TAGGER_MAX_DECODE_BYTES accepts


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith("VmRSS:"))


def _worst_rgba_png() -> bytes:
    half = SIDE // 2
    row = b"\x10\x20\x30\x80" * half + b"\xe0\xe0\xe0\xff" * (SIDE - half)
    return image_bombs.png(SIDE, SIDE, row, colour_type=6)


async def _clients(url: str, data: bytes, clients: int, rounds: int) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:

        async def client() -> list[int]:
            headers = {"content-type": "image/png"}
            return [
                (await http.post(URL, content=data, headers=headers)).status_code
                for _ in range(rounds)
            ]

        return [
            code
            for codes in await asyncio.gather(*(client() for _ in range(clients)))
            for code in codes
        ]


def test_four_clients_of_the_worst_accepted_image_raise_rss_by_under_300_mb(
    shared_root: Path, evaluated: Evaluated, tmp_path: Path
) -> None:
    process, url = start_app(
        shared_root,
        tmp_path / "server.log",
        TAGGER_REQUEST_TIMEOUT_MS="60000",  # a loaded test machine: measure memory only
    )
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss(process.pid))
            time.sleep(0.01)

    try:
        light = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
        assert httpx.post(f"{url}{URL}", files=light).status_code == 200
        baseline = _rss(process.pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        codes = asyncio.run(_clients(url, _worst_rgba_png(), clients=4, rounds=2))
        stop.set()
        sampler.join()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert codes == [200] * 8
    rise = peak[0] - baseline
    assert rise < 300 * 1000 * 1000, f"RSS rose {rise / MIB:.0f} MiB (measured ~+160 here)"
