"""Pixels in batches, from an array in memory or from a split that streams them off disk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np

# Images per inference batch are capped so that a batch's uint8 pixels stay under this many
# bytes: activations grow with them (512 images of 224x224x3 took over 700 MB to predict).
EVAL_BATCH_BYTES = 8 * 2**20
MAX_EVAL_BATCH = 512


def eval_batch_size(image_bytes: int, largest: int = MAX_EVAL_BATCH) -> int:
    """Images per evaluation batch: `largest` for small images, fewer for large ones."""
    return max(1, min(largest, EVAL_BATCH_BYTES // max(1, image_bytes)))


@runtime_checkable
class BatchSource(Protocol):
    """Anything that yields its uint8 images `[n, H, W, C]` in order, a batch at a time."""

    def batches(self, size: int) -> Iterator[np.ndarray]: ...

    def __len__(self) -> int: ...


def iterate_batches(images: np.ndarray | BatchSource, size: int) -> Iterator[np.ndarray]:
    """Consecutive batches of at most `size` images (fewer for large images), in order."""
    image_bytes = _image_bytes(images)
    if image_bytes:
        size = eval_batch_size(image_bytes, size)
    if isinstance(images, np.ndarray):
        for start in range(0, len(images), size):
            yield images[start : start + size]
    else:
        yield from images.batches(size)


def _image_bytes(images: np.ndarray | BatchSource) -> int:
    if isinstance(images, np.ndarray):
        return int(np.prod(images.shape[1:])) if images.ndim > 1 else 0
    return int(getattr(images, "image_bytes", 0))
