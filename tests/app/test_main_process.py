"""`python -m app` as a real process: settings from env, JSON logs, clean SIGTERM."""

from __future__ import annotations

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


def test_python_m_app_serves_logs_json_and_stops_cleanly_on_sigterm(
    shared_root: Path, evaluated: Evaluated
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "TAGGER_HOST": "127.0.0.1",
        "TAGGER_PORT": str(port),
        "TAGGER_MODEL_STORE": str(shared_root),
        "TAGGER_POLL_INTERVAL_S": "0",
        "TAGGER_LOG_LEVEL": "INFO",
    }
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.2)
        files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
        response = httpx.post(f"{url}{URL}", files=files, headers={"x-request-id": "req-42"})
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
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
