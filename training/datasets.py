"""Data sets as fixed-seed, stratified train/validation/test splits of uint8 pixels + int labels.

Fashion-MNIST: validation is held out of the 60k training images; the 10k test images are
only used for the final evaluation. Image folders: one stratified three-way split.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model_store.preprocessing import fashion_mnist_spec
from model_store.schema import InputSpec, PreprocessingSpec
from training import fashion, image_folder
from training.config import TrainConfig
from training.errors import DatasetError

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


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    labels: list[str]
    input: InputSpec
    preprocessing: PreprocessingSpec
    train: Split
    validation: Split
    test: Split
    skipped: int = 0  # unreadable files left out

    def sizes(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.splits()}

    def splits(self) -> list[tuple[str, Split]]:
        return [("train", self.train), ("validation", self.validation), ("test", self.test)]

    def fingerprint(self) -> str:
        """sha256 over the label names and every split's pixels, labels and source positions."""
        digest = hashlib.sha256("\n".join(self.labels).encode())
        for name, split in self.splits():
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
    return _load_folder(config, test_only)


def to_tf_dataset(
    split: Split, batch_size: int, *, shuffle: bool, seed: int, repeat: bool = False
) -> tf.data.Dataset:
    """A batched, prefetched `(pixels uint8, label int32)` pipeline; shuffled with `seed`.

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
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _empty(shape: InputSpec) -> Split:
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
    train = validation = _empty(shape)
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


def _load_folder(config: TrainConfig, test_only: bool) -> Dataset:
    root = Path(config.data_dir or ".")
    classes, paths, labels = image_folder.scan(root)
    height, width = config.image_size
    shape = InputSpec(height=height, width=width, channels=1 if config.color_mode == "L" else 3)
    spec = PreprocessingSpec(color_mode=config.color_mode)
    rng = np.random.default_rng(config.seed)
    rest, test_pos = stratified_split(labels, config.test_fraction, rng)
    train_pos, val_pos = stratified_split(labels[rest], config.validation_fraction, rng)
    wanted = {"test": test_pos}
    if not test_only:
        wanted.update(train=rest[train_pos], validation=rest[val_pos])
    splits: dict[str, Split] = {}
    skipped = 0
    for name, positions in wanted.items():
        pixels, readable = image_folder.decode([paths[i] for i in positions], spec, shape)
        skipped += len(positions) - len(readable)
        splits[name] = Split(pixels, labels[positions][readable], positions[readable])
    if skipped:
        logger.warning("skipped %d unreadable image file(s) in %s", skipped, root)
    _check_folder(root, classes, splits, skipped, test_only)
    test = _limit(splits["test"], config.test_limit)
    return Dataset(
        name=root.resolve().name or "images",
        source=str(root.resolve()),
        labels=classes,
        input=shape,
        preprocessing=spec,
        train=splits.get("train", _empty(shape)),
        validation=splits.get("validation", _empty(shape)),
        test=test,
        skipped=skipped,
    )


def _check_folder(
    root: Path, classes: list[str], splits: dict[str, Split], skipped: int, test_only: bool
) -> None:
    readable = sum(len(split) for split in splits.values())
    if readable == 0:
        raise DatasetError(f"no readable images in {root} ({skipped} file(s) could not be decoded)")
    if test_only:
        return
    present = np.unique(np.concatenate([split.labels for split in splits.values()]))
    missing = [classes[i] for i in range(len(classes)) if i not in present]
    if missing:
        names = ", ".join(missing)
        raise DatasetError(f"class folder(s) {names} in {root} have no readable images")
    small = [name for name, split in splits.items() if len(split) == 0]
    if small:
        raise DatasetError(
            f"too few readable images in {root} ({readable}) to hold out a "
            f"{' and '.join(small)} set; add images (a few per class at least)"
        )
