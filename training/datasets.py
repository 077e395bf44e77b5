"""Data sets as fixed-seed, stratified train/validation/test splits of uint8 pixels + int labels.

Fashion-MNIST: validation is held out of the 60k training images; the 10k test images are
only used for the final evaluation; all of it in memory. Image folders
(`training.folder_dataset`): one stratified three-way split of the file list, streamed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from model_store.preprocessing import fashion_mnist_spec
from model_store.schema import InputSpec, PreprocessingSpec
from training import fashion
from training.config import TrainConfig
from training.image_folder import SkipLog
from training.streaming import DecodedSplit, Decoder, FileSplit, StreamOptions, with_weight

if TYPE_CHECKING:  # TensorFlow is imported only when a pipeline is built: errors come fast
    import tensorflow as tf

logger = logging.getLogger(__name__)

FASHION_NAME = "fashion-mnist"


@dataclass(frozen=True)
class Split:
    """Images `[N, H, W, C]` uint8, labels `[N]` int64, and each image's position in its source."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, positions: np.ndarray) -> Split:
        return Split(self.images[positions], self.labels[positions], self.indices[positions])

    def batches(self, size: int) -> Iterator[np.ndarray]:
        for start in range(0, len(self), size):
            yield self.images[start : start + size]


# What training reads (files when streamed) and what is evaluated (pixels in order).
TrainSplit = Split | FileSplit
EvalSplit = Split | DecodedSplit


@dataclass(frozen=True)
class Streaming:
    """How a streamed data set's training files are decoded, shuffled and cached; the
    unreadable files found while training are added to `decoder.skips`."""

    decoder: Decoder
    options: StreamOptions


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    labels: list[str]
    input: InputSpec
    preprocessing: PreprocessingSpec
    train: TrainSplit
    validation: EvalSplit
    test: EvalSplit
    skipped: int = 0  # unreadable files left out before training
    streaming: Streaming | None = None  # image folders; None: everything is in memory
    # Image folders: sha256 over the file contents, labels and splits (the pixels are not
    # all in memory to hash).
    content_fingerprint: str | None = None

    @property
    def train_skips(self) -> SkipLog:
        return self.streaming.decoder.skips if self.streaming else SkipLog()

    def total_skipped(self) -> int:
        """Unreadable files: those found before training plus those found while training."""
        return self.skipped + len(self.train_skips)

    def sizes(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.splits()}

    def splits(self) -> list[tuple[str, Split]]:
        return [("train", self.train), ("validation", self.validation), ("test", self.test)]

    def fingerprint(self) -> str:
        """sha256 over the label names and every split's pixels, labels and source positions
        (image folders: over the files' contents instead of their pixels)."""
        if self.content_fingerprint is not None:
            return self.content_fingerprint
        digest = hashlib.sha256("\n".join(self.labels).encode())
        for name, split in self.splits():
            assert isinstance(split, Split)
            digest.update(f"{name}:{split.images.shape}".encode())
            digest.update(np.ascontiguousarray(split.images).tobytes())
            digest.update(split.labels.astype("<i8").tobytes())
            digest.update(split.indices.astype("<i8").tobytes())
        return "sha256:" + digest.hexdigest()


def stratified_split(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`(kept, held)` positions (ascending): about `fraction` of every class is held out,
    never a class's last example."""
    kept, held = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        count = min(len(members) - 1, round(fraction * len(members)))
        held.append(members[:count])
        kept.append(members[count:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def load_dataset(config: TrainConfig, *, test_only: bool = False) -> Dataset:
    """The splits `config` asks for; with `test_only`, train and validation are left empty."""
    if config.data_dir is None:
        return _load_fashion(config, test_only)
    from training.folder_dataset import load_folder

    return load_folder(config, test_only)


def to_tf_dataset(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    repeat: bool = False,
    class_weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """A batched, prefetched `(pixels uint8, label int32[, weight])` pipeline; shuffled with
    `seed`; with `class_weights` each example carries its class's loss weight.

    With `repeat` it never ends (a fresh shuffle each pass), so one iterator serves every
    epoch: tearing down a shuffled, prefetched iterator at each epoch end blocked for 10-30 s
    on this 2-core machine (seen with py-spy in tf.data's thread-pool shutdown).
    """
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((split.images, split.labels.astype(np.int32)))
    if shuffle:
        data = data.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    if class_weights is not None:
        table = tf.constant(class_weights, tf.float32)
        data = data.map(with_weight(table))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def empty_split(shape: InputSpec) -> Split:
    images = np.zeros((0, shape.height, shape.width, shape.channels), dtype=np.uint8)
    return Split(images, np.zeros(0, np.int64), np.zeros(0, np.int64))


def _limit(split: Split, limit: int | None) -> Split:
    return split if limit is None or limit >= len(split) else split.take(np.arange(limit))


def _load_fashion(config: TrainConfig, test_only: bool) -> Dataset:
    directory = config.fashion_dir
    source = str(directory) if directory.exists() else "keras.datasets.fashion_mnist"
    shape = InputSpec(height=28, width=28, channels=1)
    images, labels = fashion.load_part(directory, "t10k")
    test = _limit(Split(images, labels, np.arange(len(labels))), config.test_limit)
    train = validation = empty_split(shape)
    if not test_only:
        images, labels = fashion.load_part(directory, "train")
        pool = Split(images, labels, np.arange(len(labels)))
        rng = np.random.default_rng(config.seed)
        if config.train_limit is not None and config.train_limit < len(pool):
            _, chosen = stratified_split(pool.labels, config.train_limit / len(pool), rng)
            pool = pool.take(chosen)
        kept, held = stratified_split(pool.labels, config.validation_fraction, rng)
        train, validation = pool.take(kept), pool.take(held)
    return Dataset(
        name=FASHION_NAME,
        source=source,
        labels=list(fashion.LABELS),
        input=shape,
        preprocessing=fashion_mnist_spec(),
        train=train,
        validation=validation,
        test=test,
    )
