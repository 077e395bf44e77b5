"""`python -m app` as a real process: settings from env, JSON logs, clean SIGTERM."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from app_helpers import Evaluated, encode

URL = "/v1/models/fashion/classify"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(
    shared_root: Path, log: Path, **env_overrides: str
) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m app` on a free loopback port, its stderr (JSON logs) to `log`, once /readyz
    answers 200. A file, not a pipe: a full pipe would block the server's logging."""
    port = _free_port()
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


def test_python_m_app_serves_logs_json_and_stops_cleanly_on_sigterm(
    shared_root: Path, evaluated: Evaluated, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    process, url = _start(shared_root, log)
    try:
        files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
        response = httpx.post(f"{url}{URL}", files=files, headers={"x-request-id": "req-42"})
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    stderr = log.read_text()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so process managers see it.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry.get("request_id") == "req-42"]
    assert len(access) == 1
    assert access[0]["status"] == 200
    assert access[0]["model"] == "fashion"
    assert access[0]["images"] == 1
    assert access[0]["route"] == "/v1/models/{model}/classify"
    assert "latency_ms" in access[0]


def test_python_m_app_rejects_bad_settings_with_a_clear_message() -> None:
    env = {**os.environ, "TAGGER_MAX_BATCH_SIZE": "64", "TAGGER_MAX_QUEUE": "8"}
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "TAGGER_MAX_QUEUE (8) must be at least TAGGER_MAX_BATCH_SIZE (64)" in result.stderr


DRAIN_CLIENTS = 32
DRAIN_RUNS = 1  # a fresh process per run (~20 s to start here); `make bench` repeats it
ANSWERS_BEFORE_SIGTERM = 3 * DRAIN_CLIENTS  # every client is busy on its connection


def test_sigterm_under_keep_alive_load_answers_every_request_that_reached_the_server(
    shared_root: Path, evaluated: Evaluated, tmp_path: Path
) -> None:
    """32 clients on keep-alive connections; SIGTERM mid-load. Each request either gets an
    answer or its connection is refused (the server stopped listening): never a reset or a
    connection closed without an answer, and every 200 a client saw is in the server's log."""
    payload = encode(evaluated.images[0])
    for run in range(DRAIN_RUNS):
        log = tmp_path / f"drain-{run}.log"
        process, url = _start(shared_root, log, TAGGER_SHUTDOWN_TIMEOUT_S="10")
        try:
            statuses, failures = asyncio.run(_load_then_sigterm(process, url, payload))
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert failures == [], f"run {run}: {failures[:5]}"
        assert set(statuses) == {200}, statuses
        lines = [json.loads(line) for line in log.read_text().splitlines() if line[:1] == "{"]
        logged = sum(
            1 for e in lines if str(e.get("route")).endswith("/classify") and e.get("status") == 200
        )
        assert statuses[200] == logged, f"run {run}: clients saw {statuses[200]}, log has {logged}"


async def _load_then_sigterm(
    process: subprocess.Popen[bytes], url: str, payload: bytes
) -> tuple[collections.Counter[int], list[str]]:
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

    tasks = [asyncio.ensure_future(client()) for _ in range(DRAIN_CLIENTS)]
    async with asyncio.timeout(60):
        while statuses.total() < ANSWERS_BEFORE_SIGTERM:
            await asyncio.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return statuses, failures


def test_python_m_app_refuses_the_one_model_and_several_model_settings_together() -> None:
    env = {**os.environ, "TAGGER_MODEL_NAME": "fashion", "TAGGER_MODELS": "fashion,colours"}
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "TAGGER_MODEL_NAME (serve one model) cannot be combined with TAGGER_MODELS" in (
        result.stderr
    )
