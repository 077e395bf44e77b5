"""Image folders: one sub-folder per class; a cheap survey of the files (content hash, header
check) and the one per-file decode every path uses (the shared preprocessing spec)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model_store.preprocessing import ImageError, open_image, preprocess_file
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


@dataclass(frozen=True)
class Survey:
    """Per file: sha256 of its bytes (empty when it could not be read) and whether its header
    parses; no pixel is decoded."""

    digests: list[str]
    readable: np.ndarray  # bool per path


def survey(paths: Sequence[Path]) -> Survey:
    """Read every file once (in parallel threads): its content hash and a header check."""
    digests = [""] * len(paths)
    readable = np.zeros(len(paths), dtype=bool)

    def one(position: int) -> None:
        try:
            data = Path(paths[position]).read_bytes()
            digests[position] = hashlib.sha256(data).hexdigest()
            open_image(data)
            readable[position] = True
        except (ImageError, OSError) as exc:
            logger.warning("skipping unreadable image %s: %s", paths[position], exc)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(paths))))
    return Survey(digests, readable)


@dataclass
class SkipLog:
    """The files a decode pass could not turn into pixels (thread-safe; tf.data calls the
    decoder from several threads)."""

    paths: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, path: str) -> None:
        with self._lock:
            self.paths.add(path)

    def __len__(self) -> int:
        with self._lock:
            return len(self.paths)


def decode_one(
    path: str, spec: PreprocessingSpec, shape: InputSpec, skips: SkipLog
) -> tuple[np.ndarray, bool]:
    """`(model pixels, True)` for a readable file; zeros and False (logged, recorded in `skips`)
    for one that is not. The same `preprocess_file` the service's `preprocess_bytes` is."""
    try:
        return preprocess_file(Path(path), spec, shape), True
    except (ImageError, OSError) as exc:
        if path not in skips.paths:
            logger.warning("skipping unreadable image %s: %s", path, exc)
        skips.add(path)
        return np.zeros((shape.height, shape.width, shape.channels), dtype=np.uint8), False


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")
