"""`python -m app` as a real process: settings from env, JSON logs, clean SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from app_helpers import Evaluated, encode
from process_helpers import load_then_sigterm, start_app

URL = "/v1/models/fashion/classify"


def test_python_m_app_serves_logs_json_and_stops_cleanly_on_sigterm(
    shared_root: Path, evaluated: Evaluated, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    process, url = start_app(shared_root, log)
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
    result = _run_with(TAGGER_MAX_BATCH_SIZE="64", TAGGER_MAX_QUEUE="8")
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
        process, url = start_app(shared_root, log, TAGGER_SHUTDOWN_TIMEOUT_S="10")
        try:
            statuses, failures = asyncio.run(
                load_then_sigterm(process, url, payload, DRAIN_CLIENTS, ANSWERS_BEFORE_SIGTERM)
            )
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


def test_python_m_app_refuses_the_one_model_and_several_model_settings_together() -> None:
    result = _run_with(TAGGER_MODEL_NAME="fashion", TAGGER_MODELS="fashion,colours")
    assert result.returncode == 2
    assert "TAGGER_MODEL_NAME (serve one model) cannot be combined with TAGGER_MODELS" in (
        result.stderr
    )


def _run_with(**settings: str) -> subprocess.CompletedProcess[str]:
    """`python -m app` with these settings, to its exit (a refusal exits at once)."""
    return subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=120,
    )
