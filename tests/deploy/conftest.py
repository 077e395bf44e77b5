"""A real `python -m app` on a loopback port, serving the session's trained store."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from live_helpers import READY_TIMEOUT_S, LiveService, stop, wait_for
from PIL import Image

from benchmarks.service import free_port


@pytest.fixture(scope="session")
def png_image() -> bytes:
    """A 28x28 greyscale PNG of a light garment-like blob on black, as Fashion-MNIST looks."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 8:20] = 180
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def start_service(
    trained_store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., LiveService]]:
    """Starts `python -m app` as users do (env settings); every service stops with the module."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(**settings: str) -> LiveService:
        port = free_port()
        log = tmp_path_factory.mktemp("service") / "app.log"
        env = {
            **os.environ,
            "TAGGER_HOST": "127.0.0.1",
            "TAGGER_PORT": str(port),
            "TAGGER_MODEL_STORE": str(trained_store.root),
            "TAGGER_MODEL_NAME": trained_store.name,
            "TAGGER_MODEL_ALIAS": "",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **settings,
        }
        env.pop("TAGGER_API_KEY", None)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "app"], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        processes.append(process)
        wait_for(f"http://127.0.0.1:{port}/readyz", process, log, READY_TIMEOUT_S)
        return LiveService(port, trained_store.name, process.pid)

    yield start
    for process in processes:
        stop(process)
