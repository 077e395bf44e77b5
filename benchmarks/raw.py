"""The raw limit: the served SavedModel signature called in process, and preprocessing cost."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from model_store import ModelMetadata
from model_store.preprocessing import preprocess_bytes
from model_store.signature import INPUT_NAME

logger = logging.getLogger(__name__)

BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class RawPoint:
    batch_size: int
    images_per_s: float
    ms_per_batch: float
    batches: int


@dataclass(frozen=True)
class DecodePoint:
    image: str  # e.g. "png 28x28"
    bytes: int
    ms_per_image: float
    images_per_s: float


def load_signature(
    directory: Path, signature: str, output: str
) -> Callable[[np.ndarray], np.ndarray]:
    """The version's serving signature as uint8 pixels -> probabilities, as the app calls it."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))
    function = loaded.signatures[signature]

    def predict(pixels: np.ndarray) -> np.ndarray:
        return function(**{INPUT_NAME: tf.constant(pixels, dtype=tf.uint8)})[output].numpy()

    predict.keepalive = loaded  # type: ignore[attr-defined]  # the functions need the object
    return predict


def _timed_loop(
    call: Callable[[], object], seconds: float, min_calls: int = 3
) -> tuple[int, float]:
    """Call repeatedly for about `seconds` (at least `min_calls` times); (calls, elapsed)."""
    calls = 0
    start = time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - start
        if calls >= min_calls and elapsed >= seconds:
            return calls, elapsed


def model_throughput(
    predict: Callable[[np.ndarray], np.ndarray],
    shape: tuple[int, int, int],
    batch_sizes: Sequence[int] = BATCH_SIZES,
    seconds_per_size: float = 1.0,
) -> list[RawPoint]:
    """Images/s of the bare signature at each batch size (after one warm-up call per size)."""
    rng = np.random.default_rng(0)
    points = []
    for size in batch_sizes:
        batch = rng.integers(0, 256, size=(size, *shape), dtype=np.uint8)
        predict(batch)  # trace and allocate outside the measurement
        calls, elapsed = _timed_loop(lambda batch=batch: predict(batch), seconds_per_size)
        point = RawPoint(size, calls * size / elapsed, 1000.0 * elapsed / calls, calls)
        logger.info("raw batch %4d: %9.0f images/s", size, point.images_per_s)
        points.append(point)
    return points


def product_photo(side: int, seed: int = 0) -> Image.Image:
    """A synthetic catalogue photo: a dark garment-like shape on a light, slightly noisy ground."""
    rng = np.random.default_rng(seed)
    ground = 235 + rng.integers(-6, 7, size=(side, side, 3))
    image = Image.fromarray(np.clip(ground, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    s = side / 100.0
    draw.polygon(
        [(30 * s, 15 * s), (70 * s, 15 * s), (88 * s, 35 * s), (75 * s, 42 * s), (70 * s, 36 * s),
         (70 * s, 88 * s), (30 * s, 88 * s), (30 * s, 36 * s), (25 * s, 42 * s), (12 * s, 35 * s)],
        fill=(40, 60, 110),
    )  # fmt: skip
    draw.ellipse((42 * s, 12 * s, 58 * s, 22 * s), fill=(235, 235, 235))
    return image


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def sample_images() -> dict[str, bytes]:
    """The inputs the preprocessing benchmark (and the load generator) send."""
    small = product_photo(28).convert("L")
    large = product_photo(1000)
    return {
        "png 28x28": encode(small, "PNG"),
        "jpeg 28x28": encode(small, "JPEG"),
        "png 1000x1000": encode(large, "PNG"),
        "jpeg 1000x1000": encode(large, "JPEG"),
    }


def preprocess_cost(metadata: ModelMetadata, seconds_per_image: float = 1.0) -> list[DecodePoint]:
    """Decode + preprocess time per image with the one shared implementation the app uses."""
    points = []
    for name, data in sample_images().items():
        call = lambda data=data: preprocess_bytes(data, metadata.preprocessing, metadata.input)  # noqa: E731
        call()
        calls, elapsed = _timed_loop(call, seconds_per_image)
        point = DecodePoint(name, len(data), 1000.0 * elapsed / calls, calls / elapsed)
        logger.info("preprocess %-15s %8.3f ms/image", name, point.ms_per_image)
        points.append(point)
    return points


def run_raw(
    version_dir: Path,
    metadata: ModelMetadata,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    seconds_per_size: float = 1.0,
) -> dict[str, list[dict[str, float | int | str]]]:
    """Both raw measurements, as JSON-ready dicts."""
    spec = metadata.input
    predict = load_signature(version_dir, metadata.signature, metadata.output)
    shape = (spec.height, spec.width, spec.channels)
    model = model_throughput(predict, shape, batch_sizes, seconds_per_size)
    decode = preprocess_cost(metadata, seconds_per_image=min(1.0, seconds_per_size))
    return {"model": [asdict(p) for p in model], "preprocess": [asdict(p) for p in decode]}
