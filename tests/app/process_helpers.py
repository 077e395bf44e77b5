"""`python -m app` as a real process in tests: start it ready on a free port, drain it."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks.service import free_port

URL = "/v1/models/fashion/classify"


def start_app(
    shared_root: Path, log: Path, **env_overrides: str
) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m app` on a free loopback port, its stderr (JSON logs) to `log`, once /readyz
    answers 200. A file, not a pipe: a full pipe would block the server's logging."""
    port = free_port()
    env = {
        **os.environ,
        "TAGGER_HOST": "127.0.0.1",
        "TAGGER_PORT": str(port),
        "TAGGER_MODEL_STORE": str(shared_root),
        "TAGGER_POLL_INTERVAL_S": "0",
        "TAGGER_LOG_LEVEL": "INFO",
        **env_overrides,
    }
    root = Path(__file__).resolve().parents[2]
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise AssertionError(log.read_text())
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("server never became ready")
        time.sleep(0.2)


async def load_then_sigterm(
    process: subprocess.Popen[bytes], url: str, payload: bytes, clients: int, answers_first: int
) -> tuple[collections.Counter[int], list[str]]:
    """`clients` clients post `payload` back to back, each on its own keep-alive connection;
    after `answers_first` answers the server gets SIGTERM. Returns the statuses seen and the
    transport failures other than a refused connection (the server stopped listening)."""
    statuses: collections.Counter[int] = collections.Counter()
    failures: list[str] = []

    async def client() -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            while True:
                try:
                    response = await http.post(
                        URL, content=payload, headers={"content-type": "image/png"}
                    )
                except httpx.ConnectError:
                    return  # refused: the server has stopped listening
                except httpx.TransportError as exc:
                    failures.append(repr(exc))
                    return
                statuses[response.status_code] += 1

    tasks = [asyncio.ensure_future(client()) for _ in range(clients)]
    async with asyncio.timeout(60):
        while statuses.total() < answers_first:
            await asyncio.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return statuses, failures
