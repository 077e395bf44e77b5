"""--distribute multi-worker: two real training processes on loopback (CPU, TF_CONFIG)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from image_folders import make_image_folder

from model_store import ModelStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def start_workers(data: Path, store: Path, logs: Path, *extra: str) -> list[subprocess.Popen]:
    """Worker 0 (the chief) and worker 1, each `python -m training train` with its TF_CONFIG."""
    cluster = [f"127.0.0.1:{port}" for port in free_ports(2)]
    command = [
        sys.executable, "-m", "training", "train", "--profile", "tiny", "--data", str(data),
        "--store", str(store), "--model", "shapes", "--image-size", "24", "--color-mode", "RGB",
        "--quiet", "--distribute", "multi-worker", "--worker-timeout", "30", *extra,
    ]  # fmt: skip
    workers = []
    for index in range(2):
        config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "PYTHONPATH": str(ROOT)}
        log = (logs / f"worker{index}.log").open("w")
        workers.append(
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        )
    return workers


def wait_all(workers: list[subprocess.Popen], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    try:
        return [worker.wait(max(1.0, deadline - time.monotonic())) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("mw") / "shapes", per_class=16)


def test_two_workers_train_and_the_chief_publishes_once(shapes: Path, tmp_path: Path) -> None:
    store_root = tmp_path / "models"
    workers = start_workers(shapes, store_root, tmp_path, "--class-weight", "balanced")
    codes = wait_all(workers, 240)
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "published shapes version 1" in logs[0]
    assert "worker 1 of 2): trained; the chief publishes" in logs[1]
    store = ModelStore(store_root)
    assert store.versions("shapes") == [1]
    training = store.metadata("shapes", 1).training
    assert (training.strategy, training.replicas, training.workers) == ("multi-worker", 2, 2)
    assert training.global_batch == 2 * 8  # tiny's 8 per replica
    assert training.class_weights is not None and set(training.class_weights) == {
        "circle", "square", "stripes",
    }  # fmt: skip
    assert training.hyperparameters["class_weight"] == "balanced"


def test_a_killed_worker_fails_the_run_and_publishes_nothing(shapes: Path, tmp_path: Path) -> None:
    store_root = tmp_path / "models"
    chief, worker = start_workers(
        shapes, store_root, tmp_path, "--epochs", "500", "--patience", "500"
    )
    chief_log = tmp_path / "worker0.log"
    deadline = time.monotonic() + 120
    while "training tiny on" not in chief_log.read_text() and time.monotonic() < deadline:
        assert chief.poll() is None, chief_log.read_text()[-3000:]
        time.sleep(0.5)
    time.sleep(2)  # into the steps, where every one waits on the other worker
    worker.send_signal(signal.SIGKILL)
    started = time.monotonic()
    code = wait_all([chief, worker], 120)[0]
    log = chief_log.read_text()
    assert code == 1, log[-3000:]
    assert time.monotonic() - started < 90
    assert "error: multi-worker training failed" in log
    assert not store_root.exists() or ModelStore(store_root).models() == []
