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

COLOURS = ("blue", "green", "red")
COLOURS_PER_CLASS = 80


@pytest.fixture(scope="session")
def colours_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A second real model beside `fashion`, of another input and label set: `colours`, the
    `tiny` profile trained on 240 generated 40x40 RGB images (a coloured square on dark noise)
    to 32x32x3, published into its own store."""
    from PIL import Image

    from model_store import ModelStore
    from training.pipeline import train_and_publish
    from training.profiles import get_profile

    data = tmp_path_factory.mktemp("colours-data")
    rng = np.random.default_rng(7)
    for channel, name in enumerate(COLOURS[::-1]):  # red = channel 0
        folder = data / name
        folder.mkdir()
        for i in range(COLOURS_PER_CLASS):
            pixels = rng.integers(0, 40, (40, 40, 3), dtype=np.uint8)
            left, top = (int(v) for v in rng.integers(0, 20, 2))
            pixels[top : top + 20, left : left + 20, channel] = rng.integers(180, 256)
            Image.fromarray(pixels, "RGB").save(folder / f"{i:03d}.png")
    store = ModelStore(tmp_path_factory.mktemp("colours-store"))
    config = get_profile("tiny").model_copy(
        update={"data_dir": data, "image_size": (32, 32), "color_mode": "RGB", "epochs": 3}
    )
    train_and_publish(config, store, "colours", progress=False)
    return store


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
