"""tf.data pipelines over image files: read and decoded in parallel by the shared
preprocessing (`image_folder.decode_one`), never held whole in memory.

Training streams the file list through a shuffle of file names, the decode, an optional cache
of decoded pixels on disk (`--cache DIR`), a bounded shuffle buffer and prefetching. Validation
and test images are decoded once, in order, into a raw pixel file that is read back a batch at
a time (they are needed several times: every epoch, calibration, export checks).

Keep iterators over these pipelines in function scope: one still alive when the interpreter
exits deadlocks there (its decode threads wait for the GIL inside `numpy_function` while the
exiting thread, holding it, waits for them).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model_store.schema import InputSpec, PreprocessingSpec
from training.image_folder import SkipLog, decode_one

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger(__name__)

DECODE_BATCH = 256


@dataclass(frozen=True)
class FileSplit:
    """Image files not decoded yet: path (str), class index and position in the file list."""

    paths: np.ndarray
    labels: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Decoder:
    """How files become pixels, and where the unreadable ones are recorded."""

    spec: PreprocessingSpec
    shape: InputSpec
    skips: SkipLog = field(default_factory=SkipLog)

    def dataset(self, split: FileSplit, *, shard: tuple[int, int] = (1, 0)) -> tf.data.Dataset:
        """`(pixels, label, index)` per readable file, in file-list order (of `shard` =
        `(count, which)`), decoded by parallel calls."""
        import tensorflow as tf

        data = tf.data.Dataset.from_tensor_slices(
            (split.paths.astype(str), split.labels.astype(np.int32), split.indices)
        )
        if shard[0] > 1:
            data = data.shard(*shard)
        return self.decode(data)

    def decode(self, files: tf.data.Dataset) -> tf.data.Dataset:
        """Map `(path, label, ...)` elements to `(pixels, label, ...)`, dropping unreadable ones."""
        import tensorflow as tf

        height, width, channels = self.shape.height, self.shape.width, self.shape.channels

        def one(path: bytes) -> tuple[np.ndarray, np.bool_]:
            pixels, ok = decode_one(path.decode(), self.spec, self.shape, self.skips)
            return pixels, np.bool_(ok)

        def mapped(path: tf.Tensor, *rest: tf.Tensor) -> tuple[tf.Tensor, ...]:
            pixels, ok = tf.numpy_function(one, [path], [tf.uint8, tf.bool], stateful=False)
            pixels.set_shape((height, width, channels))
            ok.set_shape(())
            return (pixels, *rest, ok)

        decoded = files.map(mapped, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return decoded.filter(_readable).map(_without_flag)


def _readable(*parts: Any) -> Any:
    return parts[-1]


def _without_flag(*parts: Any) -> Any:
    return parts[:-1]


@dataclass(frozen=True)
class StreamOptions:
    """The training stream's knobs: bounded shuffle buffer (images) and the optional cache."""

    shuffle_buffer: int = 1000
    cache_dir: Path | None = None
    cache_key: str = "images"


def train_stream(
    split: FileSplit,
    decoder: Decoder,
    options: StreamOptions,
    batch_size: int,
    seed: int,
    *,
    class_weights: np.ndarray | None = None,
    shard: tuple[int, int] = (1, 0),
) -> tf.data.Dataset:
    """An endless, shuffled `(pixels, label[, weight])` batch stream over `split`'s files.

    File names are shuffled in full (cheap); decoded pixels only through a buffer of
    `options.shuffle_buffer` images. With a cache the first pass writes the decoded pixels
    (in one fixed shuffled order) to `cache_dir` and later passes read them from there.
    """
    import tensorflow as tf

    files = tf.data.Dataset.from_tensor_slices(
        (split.paths.astype(str), split.labels.astype(np.int32))
    )
    if shard[0] > 1:
        files = files.shard(*shard)
    cached = options.cache_dir is not None
    files = files.shuffle(len(split), seed=seed, reshuffle_each_iteration=not cached)
    data = decoder.decode(files)
    if cached:
        data = data.cache(str(_cache_prefix(options, shard)))
    data = data.shuffle(options.shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    data = data.repeat()
    if class_weights is not None:
        table = tf.constant(class_weights, tf.float32)
        data = data.map(with_weight(table))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def with_weight(table: tf.Tensor) -> Any:
    """`(pixels, label) -> (pixels, label, table[label])`: a class's loss weight per example."""
    import tensorflow as tf

    @tf.autograph.experimental.do_not_convert
    def add(pixels: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return pixels, label, tf.gather(table, label)

    return add


def _cache_prefix(options: StreamOptions, shard: tuple[int, int]) -> Path:
    """Where tf.data caches the training pixels; a lock left by a killed run is removed."""
    assert options.cache_dir is not None
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    prefix = options.cache_dir / f"{options.cache_key}-train-{shard[1]}of{shard[0]}"
    for stale in options.cache_dir.glob(f"{prefix.name}*.lockfile"):
        logger.warning("removing %s, left by an interrupted run", stale)
        stale.unlink(missing_ok=True)
    return prefix


@dataclass(frozen=True)
class DecodedSplit:
    """Decoded images kept in a raw uint8 file (`[n, H, W, C]`, C order), read back in batches;
    labels and positions in memory."""

    file: Path
    shape: InputSpec
    labels: np.ndarray
    indices: np.ndarray
    keep: Any = field(default=None, repr=False, compare=False)  # owns a temporary directory

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_bytes(self) -> int:
        return self.shape.height * self.shape.width * self.shape.channels

    def batches(self, size: int) -> Iterator[np.ndarray]:
        dims = (self.shape.height, self.shape.width, self.shape.channels)
        with self.file.open("rb") as handle:
            for start in range(0, len(self), size):
                count = min(size, len(self) - start)
                data = handle.read(count * self.image_bytes)
                if len(data) != count * self.image_bytes:
                    raise OSError(f"{self.file} is truncated")
                yield np.frombuffer(data, dtype=np.uint8).reshape(count, *dims)

    def dataset(self, batch_size: int) -> tf.data.Dataset:
        """`(pixels, label)` batches read from the file, for Keras' validation."""
        import tensorflow as tf

        labels = self.labels.astype(np.int32)

        def generate() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for number, pixels in enumerate(self.batches(batch_size)):
                yield pixels, labels[number * batch_size : number * batch_size + len(pixels)]

        dims = (None, self.shape.height, self.shape.width, self.shape.channels)
        signature = (tf.TensorSpec(dims, tf.uint8), tf.TensorSpec((None,), tf.int32))
        data = tf.data.Dataset.from_generator(generate, output_signature=signature)
        # A known length: Keras then expects the end instead of warning about it.
        return data.apply(tf.data.experimental.assert_cardinality(-(-len(self) // batch_size)))


def decode_to_file(
    split: FileSplit, decoder: Decoder, name: str, cache_dir: Path | None, cache_key: str
) -> DecodedSplit:
    """Decode `split` once, in order, into a pixel file: `<cache_dir>/<key>-<name>.u8` (reused
    when already there) or a temporary one that lives as long as the returned split."""
    keep = None
    if cache_dir is None:
        keep = tempfile.TemporaryDirectory(prefix="tagger-decoded-")
        target = Path(keep.name) / f"{name}.u8"
    else:
        cache_dir.mkdir(parents=True, exist_ok=True)
        target = cache_dir / f"{cache_key}-{name}.u8"
        reused = _reuse(target, decoder.shape)
        if reused is not None:
            logger.info("reusing decoded %s images from %s", name, target)
            return reused
    labels: list[np.ndarray] = []
    indices: list[np.ndarray] = []
    # Per process: workers sharing a cache directory may decode the same split at once.
    partial = target.with_suffix(f".partial-{os.getpid()}")
    with partial.open("wb") as handle:
        for pixels, label, index in decoder.dataset(split).batch(DECODE_BATCH).prefetch(1):
            handle.write(pixels.numpy().tobytes())
            labels.append(label.numpy().astype(np.int64))
            indices.append(index.numpy().astype(np.int64))
    kept_labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    kept_indices = np.concatenate(indices) if indices else np.zeros(0, np.int64)
    partial.replace(target)
    if keep is None:
        sidecar = target.with_suffix(f".{os.getpid()}.npz")
        np.savez(sidecar, labels=kept_labels, indices=kept_indices)
        sidecar.replace(target.with_suffix(".npz"))  # last: a reader checks the file's size
    return DecodedSplit(target, decoder.shape, kept_labels, kept_indices, keep)


def _reuse(target: Path, shape: InputSpec) -> DecodedSplit | None:
    try:
        with np.load(target.with_suffix(".npz")) as saved:
            labels, indices = saved["labels"], saved["indices"]
        size = target.stat().st_size
    except (OSError, KeyError, ValueError):
        return None
    split = DecodedSplit(target, shape, labels, indices)
    return split if size == len(labels) * split.image_bytes else None
