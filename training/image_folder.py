"""Image folders: one sub-folder per class, decoded through the shared preprocessing spec."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from model_store.preprocessing import ImageError, preprocess_file
from model_store.schema import InputSpec, PreprocessingSpec
from training.errors import DatasetError

logger = logging.getLogger(__name__)

EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def scan(root: Path) -> tuple[list[str], list[Path], np.ndarray]:
    """`(class names, image paths, class index per path)`, sorted; clear errors for bad layouts."""
    if not root.exists():
        raise DatasetError(f"data directory {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"data directory {root} is not a directory")
    try:
        classes = sorted(
            entry.name for entry in root.iterdir() if entry.is_dir() and not _hidden(entry)
        )
    except OSError as exc:
        raise DatasetError(f"cannot read data directory {root}: {exc}") from exc
    if not classes:
        raise DatasetError(f"{root} has no class sub-folders; put each class's images in its own")
    if len(classes) == 1:
        raise DatasetError(
            f"{root} has a single class ({classes[0]!r}); a classifier needs at least two"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        found = sorted(
            path
            for path in (root / name).rglob("*")
            if path.suffix.lower() in EXTENSIONS and path.is_file() and not _hidden(path)
        )
        if not found:
            raise DatasetError(
                f"class folder {root / name} has no images "
                f"({', '.join(sorted(ext.lstrip('.') for ext in EXTENSIONS))})"
            )
        paths.extend(found)
        labels.extend([index] * len(found))
    return classes, paths, np.asarray(labels, dtype=np.int64)


def decode(
    paths: Sequence[Path], spec: PreprocessingSpec, shape: InputSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Preprocess each file to model pixels: `(pixels [M, H, W, C], positions in paths of the M
    readable ones)`; unreadable files are skipped with a warning."""
    pixels = np.zeros((len(paths), shape.height, shape.width, shape.channels), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)

    def one(position: int) -> None:
        try:
            pixels[position] = preprocess_file(paths[position], spec, shape)
            ok[position] = True
        except (ImageError, OSError) as exc:
            logger.warning("skipping unreadable image %s: %s", paths[position], exc)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(paths))))
    readable = np.flatnonzero(ok)
    return pixels[readable], readable


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")
