"""The page's sample images: the first test image of each Fashion-MNIST class, as PNGs.

Read at first use from the data set's own IDX files (TAGGER_FASHION_MNIST_DIR, Debian's
`dataset-fashion-mnist` by default), never shipped in the package: no data set file is part of
the project. Without the data set there are no samples, and the page says so.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from training.errors import DatasetError
from training.fashion import IMAGES_MAGIC, LABELS, LABELS_MAGIC, read_idx

logger = logging.getLogger(__name__)

_IMAGES = "t10k-images-idx3-ubyte.gz"
_LABELS = "t10k-labels-idx1-ubyte.gz"


@dataclass(frozen=True, slots=True)
class Sample:
    """One test image: its index in t10k, its true label and its PNG bytes."""

    index: int
    label: str
    png: bytes


class SampleImages:
    """The samples of one data set directory, read once on first use (thread-safe)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._samples: list[Sample] | None = None

    def all(self) -> list[Sample]:
        """One sample per class, in label order; empty when the data set is not installed."""
        with self._lock:
            if self._samples is None:
                self._samples = self._read()
            return self._samples

    def find(self, index: int) -> Sample | None:
        return next((s for s in self.all() if s.index == index), None)

    def _read(self) -> list[Sample]:
        if self.directory is None or not (self.directory / _IMAGES).is_file():
            logger.info("no sample images for the page: no Fashion-MNIST at %s", self.directory)
            return []
        try:
            images = read_idx(self.directory / _IMAGES, IMAGES_MAGIC)
            labels = read_idx(self.directory / _LABELS, LABELS_MAGIC)
        except DatasetError as exc:
            logger.warning("no sample images for the page: %s", exc)
            return []
        samples = []
        for class_index, label in enumerate(LABELS):
            found = (labels[: len(images)] == class_index).nonzero()[0]
            if len(found):
                index = int(found[0])
                samples.append(Sample(index, label, _png(images[index])))
        return samples


def _png(pixels: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")  # type: ignore[arg-type]
    return buffer.getvalue()
