"""The raw limit: the version called in process in each runtime, and preprocessing cost."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from benchmarks import runtimes
from model_store import ModelMetadata
from model_store.preprocessing import preprocess_bytes

logger = logging.getLogger(__name__)

BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class DecodePoint:
    image: str  # e.g. "png 28x28"
    bytes: int
    ms_per_image: float
    images_per_s: float


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


def load_models(store: Any, name: str, version: int) -> dict[str, Any]:
    """The version loaded exactly as the service loads it (`app.core.runtime`, default thread
    settings): in TensorFlow, and in ONNX Runtime when the version has model.onnx and
    onnxruntime is installed."""
    from app.config import Settings
    from app.core.runtime import (
        configure_tensorflow,
        has_onnx,
        load_onnx_model,
        load_saved_model,
        onnxruntime_refusal,
        open_version,
    )

    settings = Settings()
    metadata, directory = open_version(store, name, version)
    device = configure_tensorflow(settings.tf_intra_op_threads, settings.tf_inter_op_threads)
    models = {runtimes.TENSORFLOW: load_saved_model(name, version, metadata, directory, device)}
    refusal = onnxruntime_refusal(leave_gpu_to_tensorflow=False)
    if has_onnx(metadata) and refusal is None:
        models[runtimes.ONNXRUNTIME] = load_onnx_model(
            name, version, metadata, directory, settings.tf_intra_op_threads
        )
    else:
        logger.warning("%s v%d: no ONNX Runtime column (%s)", name, version,
                       refusal or "no model.onnx")  # fmt: skip
    return models


def served_runtime(store: Any, name: str, version: int) -> str:
    """The runtime `python -m app` serves the version with under this environment's settings."""
    from app.config import Settings
    from app.core.runtime import AUTO, choose_runtime, onnxruntime_refusal

    setting = Settings().runtime
    refusal = onnxruntime_refusal(leave_gpu_to_tensorflow=setting == AUTO)
    return choose_runtime(setting, name, version, store.metadata(name, version), refusal)


def raw_samples(
    predicts: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    shape: tuple[int, int, int],
    batch_sizes: Sequence[int],
    seconds_per_size: float,
    rounds: int = 5,
) -> list[dict[str, Any]]:
    """ms per call for each runtime, batch size and round; the runtimes alternate who goes
    first, and each round gets `seconds_per_size / rounds` per runtime and size."""
    rng = np.random.default_rng(0)
    batches = {
        size: rng.integers(0, 256, size=(size, *shape), dtype=np.uint8) for size in batch_sizes
    }
    for predict in predicts.values():  # first call per size outside the measurement
        for batch in batches.values():
            predict(batch)
    order = list(predicts)
    samples = []
    for round_index in range(rounds):
        for size, batch in batches.items():
            for runtime in order if round_index % 2 == 0 else order[::-1]:
                predict = predicts[runtime]
                calls, elapsed = _timed_loop(
                    lambda p=predict, b=batch: p(b), seconds_per_size / rounds
                )
                ms = 1000.0 * elapsed / calls
                samples.append(
                    {"runtime": runtime, "batch_size": size, "round": round_index, "ms": ms}
                )
        logger.info("raw runtimes round %d of %d done", round_index + 1, rounds)
    return samples


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
    store: Any,
    name: str,
    version: int,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    seconds_per_size: float = 1.0,
    preprocess: bool = True,
) -> dict[str, Any]:
    """Both raw measurements, as JSON-ready dicts: the model in each runtime side by side
    (`runtimes`), the runtime the service picks by default alone (`model`), and preprocessing
    (unless `preprocess` is False)."""
    metadata = store.metadata(name, version)
    spec = metadata.input
    models = load_models(store, name, version)
    predicts = {runtime: model.predict for runtime, model in models.items()}
    shape = (spec.height, spec.width, spec.channels)
    samples = raw_samples(predicts, shape, batch_sizes, seconds_per_size)
    rows = runtimes.raw_rows(samples)
    served = served_runtime(store, name, version)
    seconds_per_image = min(1.0, seconds_per_size)
    decode = preprocess_cost(metadata, seconds_per_image) if preprocess else []
    return {
        "runtimes": rows,
        "runtime_samples": samples,
        "served_runtime": served,
        "model": runtimes.served_rows(rows, served),
        "preprocess": [asdict(p) for p in decode],
    }
