"""TAGGER_WORKERS=2: two server processes on one port under the supervisor, as users run it.

One supervisor for the module; the tests run in order (answers and metrics, hot reload, a
killed worker, SIGTERM under load), each leaving it serving for the next but the last."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_helpers import Evaluated, encode, republish_with_onnx
from process_helpers import URL, load_then_sigterm, start_app

from model_store import ModelStore
from model_store.signature import ONNX_FILE

WORKERS = 2
REQUESTS = 40
BURST_CONNECTIONS = 64
REQUESTS_PER_CONNECTION = 3


class Supervised:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def lines(self) -> list[dict[str, Any]]:
        text = self.log.read_text()
        return [json.loads(line) for line in text.splitlines() if line[:1] == "{"]

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}


@pytest.fixture(scope="module")
def supervised(
    trained_store: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Supervised]:
    root = tmp_path_factory.mktemp("workers") / "models"
    shutil.copytree(trained_store.root, root)
    log = root.parent / "server.log"
    process, url = start_app(
        root,
        log,
        TAGGER_WORKERS=str(WORKERS),
        TAGGER_POLL_INTERVAL_S="0.5",
        TAGGER_SHUTDOWN_TIMEOUT_S="10",
    )
    handle = Supervised(process, url, log)
    _wait_for(lambda: _ready_workers(handle) == WORKERS, "both workers to be ready")
    try:
        yield handle
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _ready_workers(handle: Supervised) -> float:
    """`tagger_workers_ready`: live workers that have had their models ready."""
    text = httpx.get(f"{handle.url}/metrics", timeout=10).text
    found = re.search(r"^tagger_workers_ready (\S+)$", text, flags=re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _wait_for(condition: Any, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _classify_each_on_a_new_connection(url: str, payload: bytes, count: int) -> list[Any]:
    """`count` answers, each request on a connection of its own (so the kernel spreads them
    over the workers)."""
    answers = []
    for _ in range(count):
        with httpx.Client(base_url=url, timeout=30) as http:
            answers.append(
                http.post(URL, files={"file": ("a.png", payload, "image/png")}).raise_for_status()
            )
    return answers


def _classify_requests_counted(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    pattern = r'^tagger_requests_total\{method="POST",route="[^"]*classify",status="200"\} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, flags=re.MULTILINE))


def _answering_workers(handle: Supervised, since: int) -> set[int]:
    lines = handle.lines()[since:]
    return {e["worker"] for e in lines if str(e.get("route", "")).endswith("/classify")}


def test_both_workers_answer_and_metrics_count_every_request_of_both(
    supervised: Supervised, evaluated: Evaluated, trained_store: Any
) -> None:
    payload = encode(evaluated.images[0])
    before = _classify_requests_counted(supervised.url)
    mark = len(supervised.lines())
    answers = _classify_each_on_a_new_connection(supervised.url, payload, REQUESTS)
    expected = trained_store.metadata.labels[int(evaluated.probabilities[0].argmax())]
    assert {a.json()["predictions"][0]["label"] for a in answers} == {expected}
    _wait_for(lambda: len(_answering_workers(supervised, mark)) == WORKERS, "two workers' logs")
    assert _classify_requests_counted(supervised.url) - before == REQUESTS
    assert len(supervised.worker_pids()) == WORKERS


def test_a_burst_of_keep_alive_connections_is_spread_over_both_workers(
    supervised: Supervised, evaluated: Evaluated
) -> None:
    """64 clients connecting at once (as hey does) split about evenly, whichever worker is free
    at that moment: with one shared socket, the free worker took the whole burst and the other
    then idled (measured: 60 of 64 connections on one worker)."""
    request = _multipart_request(supervised.url, encode(evaluated.images[0]))
    mark = len(supervised.lines())

    async def burst() -> None:
        host, port = supervised.url.removeprefix("http://").split(":")
        # The burst arrives while one worker is busy (here: stopped) and the other is free,
        # as happens under load: a shared socket gave the free one every connection.
        busy = min(supervised.worker_pids())
        os.kill(busy, signal.SIGSTOP)
        try:
            streams = await asyncio.gather(
                *(asyncio.open_connection(host, int(port)) for _ in range(BURST_CONNECTIONS))
            )
            await asyncio.sleep(0.5)  # time for the free worker to accept what it can
        finally:
            os.kill(busy, signal.SIGCONT)
        await asyncio.gather(*(_ask(reader, writer, request) for reader, writer in streams))

    asyncio.run(burst())
    total = BURST_CONNECTIONS * REQUESTS_PER_CONNECTION
    _wait_for(
        lambda: sum(_answers_by_worker(supervised, mark).values()) == total, "every access log"
    )
    connections = {
        worker: count // REQUESTS_PER_CONNECTION
        for worker, count in _answers_by_worker(supervised, mark).items()
    }
    # Spread by address hash: below 16 of 64 happens about once in 50,000 bursts.
    assert min(connections.get(worker, 0) for worker in range(WORKERS)) >= 16, connections


def _multipart_request(url: str, png: bytes) -> bytes:
    """One keep-alive classify request as raw HTTP/1.1 bytes."""
    built = httpx.Request("POST", url + URL, files={"file": ("a.png", png, "image/png")})
    body = built.read()
    head = f"POST {URL} HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\n"
    head += f"Content-Type: {built.headers['content-type']}\r\n\r\n"
    return head.encode() + body


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    """Send `request` REQUESTS_PER_CONNECTION times on one connection, reading each answer."""
    try:
        for _ in range(REQUESTS_PER_CONNECTION):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            assert length is not None
            await reader.readexactly(int(length.group(1)))
    finally:
        writer.close()


def _answers_by_worker(handle: Supervised, since: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for entry in handle.lines()[since:]:
        if str(entry.get("route", "")).endswith("/classify") and entry.get("status") == 200:
            counts[entry["worker"]] = counts.get(entry["worker"], 0) + 1
    return counts


def test_a_version_published_while_running_is_served_by_both_workers(
    supervised: Supervised, evaluated: Evaluated
) -> None:
    store = ModelStore(Path(supervised.log).parent / "models")
    first = store.latest("fashion")
    onnx = (store.version_dir("fashion", first) / ONNX_FILE).read_bytes()
    new = republish_with_onnx(store, first, onnx)
    _wait_for(
        lambda: (
            {
                e["worker"]
                for e in supervised.lines()
                if e.get("message", "").startswith(f"serving fashion v{new} ")
            }
            == set(range(WORKERS))
        ),
        f"both workers to serve v{new}",
        timeout_s=60,
    )
    mark = len(supervised.lines())
    answers = _classify_each_on_a_new_connection(
        supervised.url, encode(evaluated.images[1]), REQUESTS
    )
    assert {a.json()["version"] for a in answers} == {new}
    assert _answering_workers(supervised, mark) == set(range(WORKERS))


def test_a_worker_that_dies_is_replaced_and_the_service_keeps_answering(
    supervised: Supervised, evaluated: Evaluated
) -> None:
    victim = min(supervised.worker_pids())
    os.kill(victim, signal.SIGKILL)
    _wait_for(
        lambda: any(
            f"(pid {victim}) exited with signal SIGKILL" in e.get("message", "")
            for e in supervised.lines()
        ),
        "the supervisor to log the death",
    )
    _wait_for(lambda: len(supervised.worker_pids() - {victim}) == WORKERS, "a replacement")
    _wait_for(lambda: _ready_workers(supervised) == WORKERS, "the replacement to be ready")
    payload = encode(evaluated.images[2])
    answers = _classify_each_on_a_new_connection(supervised.url, payload, REQUESTS)
    assert {a.status_code for a in answers} == {200}


def test_a_second_service_on_the_same_port_is_refused_not_sharing_it(
    supervised: Supervised, tmp_path: Path
) -> None:
    """The workers' sockets share the port with SO_REUSEPORT, which another process of the same
    user could join unnoticed: a second supervisor checks the port first and exits 3."""
    port = supervised.url.rsplit(":", 1)[1]
    env = {**os.environ, "TAGGER_HOST": "127.0.0.1", "TAGGER_PORT": port, "TAGGER_WORKERS": "2"}
    env["TAGGER_MODEL_STORE"] = str(tmp_path)
    second = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert second.returncode == 3, second.stderr[-2000:]
    assert b"cannot listen on 127.0.0.1:" + port.encode() in second.stderr


def test_sigterm_drains_both_workers_under_keep_alive_load(
    supervised: Supervised, evaluated: Evaluated
) -> None:
    """As for one process (test_main_process): each request is answered or its connection
    refused, never reset, and every 200 a client saw is in some worker's access log."""
    mark = len(supervised.lines())
    payload = encode(evaluated.images[0])
    statuses, failures = asyncio.run(
        load_then_sigterm(supervised.process, supervised.url, payload, 32, 96)
    )
    supervised.process.wait(timeout=60)
    assert supervised.process.returncode == 0
    assert failures == []
    assert set(statuses) == {200}, statuses
    lines = supervised.lines()[mark:]
    logged = [e for e in lines if str(e.get("route")).endswith("/classify")]
    assert sum(1 for e in logged if e.get("status") == 200) == statuses[200]
    assert {e["worker"] for e in logged} == set(range(WORKERS))
    assert any(e.get("message") == "stopped" and "worker" not in e for e in lines)
