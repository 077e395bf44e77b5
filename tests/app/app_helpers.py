"""Helpers for the app tests: a real uvicorn server in a thread, a model gate, t10k images."""

from __future__ import annotations

import asyncio
import io
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from PIL import Image
from prometheus_client import CollectorRegistry

from app.config import Settings
from app.main import create_app
from app.server import build_config
from model_store import ModelStore
from model_store.schema import METADATA_FILE
from model_store.signature import ONNX_FILE

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
T10K_IMAGES = FASHION_DIR / "t10k-images-idx3-ubyte.gz"
STARTUP_TIMEOUT_S = 120.0
HOLD_TIMEOUT_S = 60.0
POISON = 77
# Limits of the shared `server` fixture.
LIMIT_BYTES = 200_000
LIMIT_PIXELS = 1_000_000


@dataclass
class ModelGate:
    """A predict hook the test controls: `hold()` blocks the model thread until `release()`.

    It records every batch size it sees, and raises for any batch holding an image whose
    top-left pixel is `POISON` (so a test can make one image fail on the server).
    """

    _open: threading.Event = field(default_factory=threading.Event)
    batch_sizes: list[int] = field(default_factory=list)
    entered: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._open.set()

    def hold(self) -> None:
        self._open.clear()
        self.entered.clear()

    def release(self) -> None:
        self._open.set()

    def __call__(self, batch: np.ndarray) -> None:
        self.batch_sizes.append(len(batch))
        self.entered.set()
        if not self._open.wait(HOLD_TIMEOUT_S):
            raise RuntimeError("test gate was never released")
        if np.any(batch[:, 0, 0, 0] == POISON):
            raise ValueError("poisoned image")


@dataclass
class Server:
    url: str
    uvicorn: uvicorn.Server
    app: Any
    registry: CollectorRegistry
    gate: ModelGate
    store: ModelStore

    @property
    def manager(self) -> Any:
        """The manager of the one model the one-model tests serve (`fashion`)."""
        return self.manager_of("fashion")

    def manager_of(self, model: str) -> Any:
        """The manager of `model` (None while it is not served)."""
        return self.app.state.models.find(model)

    def stop(self) -> None:
        """Begin uvicorn's graceful shutdown (as SIGTERM would)."""
        self.uvicorn.should_exit = True

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def until(self, condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Like `wait_for`, yielding to the test's event loop (so its requests get sent)."""
        async with asyncio.timeout(timeout_s):
            while not condition():
                await asyncio.sleep(0.005)

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Poll until `condition()` holds (state changes made by the server thread)."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            time.sleep(0.01)


def make_settings(store_root: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_store": store_root,
        "model_name": "fashion",
        "poll_interval_s": 0,
        "max_batch_delay_ms": 0,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def run_server(
    settings: Settings, gate: ModelGate | None = None, wait_ready: bool = True
) -> Iterator[Server]:
    """A real uvicorn on a free loopback port, serving `create_app(settings)` from a thread
    with the transport `python -m app` uses (app.server)."""
    gate = gate or ModelGate()
    registry = CollectorRegistry()
    store = ModelStore(settings.model_store)
    app = create_app(settings, registry=registry, store=store, predict_hook=gate)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = build_config(app, settings, lifespan="on", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    handle = Server(f"http://127.0.0.1:{port}", server, app, registry, gate, store)
    try:
        handle.wait_for(lambda: server.started, STARTUP_TIMEOUT_S)
        if wait_ready:
            handle.wait_for(lambda: app.state.models.ready, STARTUP_TIMEOUT_S)
        yield handle
    finally:
        gate.release()
        server.should_exit = True
        thread.join(30)
        sock.close()


@dataclass(frozen=True)
class Evaluated:
    """The t10k images the version was evaluated on, with the probabilities it gave them."""

    images: np.ndarray  # uint8 [n, 28, 28]
    labels: np.ndarray
    probabilities: np.ndarray


def encode(pixels: np.ndarray, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def republish_with_onnx(store: ModelStore, version: int, onnx_bytes: bytes | None) -> int:
    """A copy of `version` as a new version whose model.onnx holds `onnx_bytes` (checksummed
    as it is), or has none (None), as versions from before ONNX export."""
    metadata = store.metadata("fashion", version)
    with store.staging("fashion") as staged:
        shutil.copytree(store.version_dir("fashion", version), staged, dirs_exist_ok=True)
        (staged / METADATA_FILE).unlink()
        if onnx_bytes is None:
            (staged / ONNX_FILE).unlink()
            metadata = metadata.model_copy(update={"onnx": None})
        else:
            (staged / ONNX_FILE).write_bytes(onnx_bytes)
        return store.publish("fashion", staged, metadata.model_copy(update={"files": {}})).version
