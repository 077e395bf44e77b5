"""Fixtures for the app tests: a copy of the trained store, a running server, t10k images."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from app_helpers import (
    LIMIT_BYTES,
    LIMIT_PIXELS,
    T10K_IMAGES,
    Evaluated,
    Server,
    make_settings,
    run_server,
)


@pytest.fixture
def store_root(trained_store: Any, tmp_path: Path) -> Path:
    """A private copy of the trained store, so tests may publish into it."""
    root = tmp_path / "models"
    shutil.copytree(trained_store.root, root)
    return root


@pytest.fixture(scope="module")
def shared_root(trained_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("app-store") / "models"
    shutil.copytree(trained_store.root, root)
    return root


@pytest.fixture(scope="module")
def server(shared_root: Path) -> Iterator[Server]:
    """One ready server for the tests that do not change its settings or store."""
    settings = make_settings(
        shared_root, max_images_per_request=4, max_upload_bytes=LIMIT_BYTES, max_pixels=LIMIT_PIXELS
    )
    with run_server(settings) as handle:
        yield handle


@pytest.fixture
async def client(server: Server) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        yield http


@pytest.fixture(scope="session")
def evaluated(trained_store: Any) -> Evaluated:
    npz = np.load(
        trained_store.store.version_dir("fashion", trained_store.version)
        / "evaluation"
        / "predictions.npz"
    )
    with gzip.open(T10K_IMAGES, "rb") as f:
        raw = f.read()
    count, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(count, rows, cols)
    return Evaluated(images[npz["indices"]], npz["labels"], npz["probabilities"])
