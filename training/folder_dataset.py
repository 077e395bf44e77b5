"""Image folders as a streamed `Dataset`: split from the file list, surveyed, never held whole.

The stratified split is made on the file list (as before streaming). Every wanted file is read
once up front for its content hash (the data set's fingerprint) and a header check, so files
that are not images are skipped and counted before training; validation and test files are
decoded into pixel files; training files are decoded while training, where a file whose
header passed but whose pixels do not decode is skipped and counted too.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from model_store.schema import InputSpec, PreprocessingSpec
from training import image_folder
from training.config import TrainConfig
from training.datasets import Dataset, Streaming, empty_split, stratified_split
from training.errors import DatasetError
from training.streaming import DecodedSplit, Decoder, FileSplit, StreamOptions, decode_to_file

logger = logging.getLogger(__name__)


def load_folder(config: TrainConfig, test_only: bool) -> Dataset:
    """The three splits of `config.data_dir` (only the test one with `test_only`)."""
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
        wanted = {"train": rest[train_pos], "validation": rest[val_pos], "test": test_pos}
    files: dict[str, FileSplit] = {}
    digest = hashlib.sha256("\n".join(classes).encode())
    digest.update(f"{shape.model_dump_json()}{spec.model_dump_json()}".encode())
    skipped = 0
    for name, positions in wanted.items():
        survey = image_folder.survey([paths[i] for i in positions])
        readable = positions[survey.readable]
        skipped += len(positions) - len(readable)
        files[name] = FileSplit(
            np.asarray([str(paths[i]) for i in readable], dtype=object), labels[readable], readable
        )
        digest.update(f"{name}:{len(readable)}".encode())
        for position, ok, sha in zip(positions, survey.readable, survey.digests, strict=True):
            if ok:
                digest.update(f"{position}:{labels[position]}:{sha}\n".encode())
    fingerprint = "sha256:" + digest.hexdigest()
    _check_files(root, classes, files, skipped, test_only)
    cache_key = fingerprint.removeprefix("sha256:")[:16]
    cache_dir = None if config.cache_dir is None else Path(config.cache_dir)
    decoder = Decoder(spec, shape)
    evaluated: dict[str, DecodedSplit] = {}
    for name in ("validation", "test"):
        if name in files:
            evaluated[name] = decode_to_file(files[name], decoder, name, cache_dir, cache_key)
            skipped += len(files[name]) - len(evaluated[name])
    if skipped:
        logger.warning("skipped %d unreadable image file(s) in %s", skipped, root)
    _check_decoded(root, evaluated, skipped, test_only)
    test = evaluated["test"]
    if config.test_limit is not None and config.test_limit < len(test):
        test = DecodedSplit(
            test.file, shape, test.labels[: config.test_limit], test.indices[: config.test_limit],
            test.keep,
        )  # fmt: skip
    options = StreamOptions(config.shuffle_buffer, cache_dir, cache_key)
    return Dataset(
        name=root.resolve().name or "images",
        source=str(root.resolve()),
        labels=classes,
        input=shape,
        preprocessing=spec,
        train=files.get("train", empty_split(shape)),
        validation=evaluated.get("validation", empty_split(shape)),
        test=test,
        skipped=skipped,
        streaming=Streaming(Decoder(spec, shape), options),
        content_fingerprint=fingerprint,
    )


def _check_files(
    root: Path, classes: list[str], files: dict[str, FileSplit], skipped: int, test_only: bool
) -> None:
    readable = sum(len(split) for split in files.values())
    if readable == 0:
        raise DatasetError(f"no readable images in {root} ({skipped} file(s) could not be decoded)")
    if test_only:
        return
    present = np.unique(np.concatenate([split.labels for split in files.values()]))
    missing = [classes[i] for i in range(len(classes)) if i not in present]
    if missing:
        names = ", ".join(missing)
        raise DatasetError(f"class folder(s) {names} in {root} have no readable images")
    _check_sizes(root, {name: len(split) for name, split in files.items()}, readable)


def _check_decoded(
    root: Path, evaluated: dict[str, DecodedSplit], skipped: int, test_only: bool
) -> None:
    if test_only and len(evaluated["test"]) == 0:
        raise DatasetError(f"no readable images in {root} ({skipped} file(s) could not be decoded)")
    if not test_only:
        sizes = {name: len(split) for name, split in evaluated.items()}
        _check_sizes(root, sizes, sum(sizes.values()))


def _check_sizes(root: Path, sizes: dict[str, int], readable: int) -> None:
    small = [name for name, size in sizes.items() if size == 0]
    if small:
        raise DatasetError(
            f"too few readable images in {root} ({readable}) to hold out a "
            f"{' and '.join(small)} set; add images (a few per class at least)"
        )
