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
    wait_ready(process, url, log)
    return process, url


def wait_ready(
    process: subprocess.Popen[bytes], url: str, log: Path | None, timeout_s: float = 180.0
) -> None:
    """Until `url`/readyz answers 200; AssertionError (with the tail of `log`) if the process
    exits first or the time runs out (then the process is killed)."""

    def tail() -> str:
        return log.read_text()[-3000:] if log is not None and log.exists() else ""

    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise AssertionError(f"python -m app exited {process.returncode}:\n{tail()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"python -m app never became ready:\n{tail()}")
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
