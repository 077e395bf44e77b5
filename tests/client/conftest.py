"""Fixtures for the client tests: t10k PNGs with what evaluation gives them, and a real server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.app.app_helpers import T10K_IMAGES, Server, encode, make_settings, run_server
from tests.client.client_helpers import BULK_IMAGES, MAX_IMAGES, Catalogue
from training.fashion import IMAGES_MAGIC, load_part, read_idx


@pytest.fixture(scope="module")
def store_root(trained_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("client-store") / "models"
    shutil.copytree(trained_store.root, root)
    return root


@pytest.fixture(scope="session")
def catalogue(trained_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    """The images the version was evaluated on, with what evaluation saw."""
    version_dir = trained_store.store.version_dir("fashion", trained_store.version)
    npz = np.load(version_dir / "evaluation" / "predictions.npz")
    images = read_idx(T10K_IMAGES, IMAGES_MAGIC)[npz["indices"]]
    root = tmp_path_factory.mktemp("catalogue")
    paths = write_pngs(root, npz["indices"], images)
    return Catalogue(root, paths, npz["labels"], npz["probabilities"])


@pytest.fixture(scope="session")
def bulk_catalogue(trained_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    """The first BULK_IMAGES test images, with the probabilities the evaluation's own code (the
    version's serving signature, run as `training evaluate` runs it) gives them."""
    from training.export import load_signature, run_signature  # TensorFlow

    version_dir = trained_store.store.version_dir("fashion", trained_store.version)
    images, labels = load_part(T10K_IMAGES.parent, "t10k")
    images, labels = images[:BULK_IMAGES], labels[:BULK_IMAGES]
    probabilities = run_signature(load_signature(version_dir), images)
    root = tmp_path_factory.mktemp("bulk-catalogue")
    paths = write_pngs(root, np.arange(BULK_IMAGES), images[..., 0])
    return Catalogue(root, paths, labels, probabilities)


def write_pngs(root: Path, indices: np.ndarray, images: np.ndarray) -> list[str]:
    """`t10k-NNNNN.png` files, alternately in two sub-folders; their paths in order."""
    paths = []
    for number, (index, pixels) in enumerate(zip(indices, images, strict=True)):
        folder = root / ("shelf-a" if number % 2 else "shelf-b")
        folder.mkdir(exist_ok=True)
        path = folder / f"t10k-{int(index):05d}.png"
        path.write_bytes(encode(pixels))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def server(store_root: Path) -> Iterator[Server]:
    """A ready server taking at most MAX_IMAGES images per request."""
    settings = make_settings(store_root, max_images_per_request=MAX_IMAGES)
    with run_server(settings) as handle:
        yield handle
