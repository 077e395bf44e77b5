"""Fashion-MNIST from its gzip IDX files (the Debian `dataset-fashion-mnist` layout)."""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path
from typing import Literal

import numpy as np

from training.errors import DatasetError

logger = logging.getLogger(__name__)

LABELS: list[str] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
Part = Literal["train", "t10k"]


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes, checking its magic number and size."""
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise DatasetError(f"Fashion-MNIST file {path} is missing") from exc
    except (OSError, EOFError) as exc:
        raise DatasetError(f"Fashion-MNIST file {path} is not a readable gzip file: {exc}") from exc
    if len(data) < 4:
        raise DatasetError(f"{path} is too short to be an IDX file")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        raise DatasetError(
            f"{path} is not an IDX file of the expected kind (magic {found:#010x}, "
            f"expected {magic:#010x})"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DatasetError(
            f"{path} is truncated or padded: its header says {expected} bytes of data, "
            f"found {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_part(directory: Path, part: Part) -> tuple[np.ndarray, np.ndarray]:
    """`(images uint8 [N, 28, 28, 1], labels int64 [N])` for the `train` or `t10k` part."""
    if not directory.exists():
        return _download(part)
    images = read_idx(directory / f"{part}-images-idx3-ubyte.gz", IMAGES_MAGIC)
    labels = read_idx(directory / f"{part}-labels-idx1-ubyte.gz", LABELS_MAGIC)
    if len(images) != len(labels):
        raise DatasetError(
            f"Fashion-MNIST {part} in {directory}: {len(images)} images but {len(labels)} labels"
        )
    if labels.size and labels.max() >= len(LABELS):
        raise DatasetError(f"Fashion-MNIST {part} labels in {directory} exceed {len(LABELS) - 1}")
    return images[..., None], labels.astype(np.int64)


def _download(part: Part) -> tuple[np.ndarray, np.ndarray]:
    """Fallback when the IDX directory is absent: Keras downloads (and caches) the data set."""
    import keras

    logger.warning(
        "Fashion-MNIST IDX directory not found; downloading it with keras.datasets "
        "(install the Debian package dataset-fashion-mnist or set TAGGER_FASHION_MNIST_DIR "
        "to avoid this)"
    )
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # any network or cache failure becomes one clear message
        raise DatasetError(
            "Fashion-MNIST is not installed (no IDX directory; set TAGGER_FASHION_MNIST_DIR) "
            f"and downloading it failed: {exc}"
        ) from exc
    images, labels = (x_train, y_train) if part == "train" else (x_test, y_test)
    return images.astype(np.uint8)[..., None], labels.astype(np.int64)
