"""Data sets: IDX parsing, fixed-seed stratified splits, image folders and their errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from image_folders import make_image_folder, write_corrupt

from training.config import TrainConfig
from training.datasets import load_dataset, stratified_split, to_tf_dataset
from training.errors import DatasetError
from training.fashion import IMAGES_MAGIC, LABELS, LABELS_MAGIC, read_idx


def write_idx(path: Path, magic: int, array: np.ndarray, extra: bytes = b"") -> Path:
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes() + extra)
    return path


def fake_fashion(directory: Path, n_train: int = 200, n_test: int = 50) -> Path:
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        write_idx(directory / f"{part}-images-idx3-ubyte.gz", IMAGES_MAGIC, images)
        write_idx(directory / f"{part}-labels-idx1-ubyte.gz", LABELS_MAGIC, labels)
    return directory


def test_read_idx_round_trips_images(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x.gz", IMAGES_MAGIC, images)
    np.testing.assert_array_equal(read_idx(path, IMAGES_MAGIC), images)


def test_read_idx_rejects_wrong_magic_and_truncation(tmp_path: Path) -> None:
    labels = np.arange(10, dtype=np.uint8)
    path = write_idx(tmp_path / "labels.gz", LABELS_MAGIC, labels)
    with pytest.raises(DatasetError, match="magic"):
        read_idx(path, IMAGES_MAGIC)
    padded = write_idx(tmp_path / "padded.gz", LABELS_MAGIC, labels, extra=b"\x00")
    with pytest.raises(DatasetError, match="truncated or padded"):
        read_idx(padded, LABELS_MAGIC)
    with pytest.raises(DatasetError, match="missing"):
        read_idx(tmp_path / "absent.gz", LABELS_MAGIC)


def test_missing_fashion_file_is_a_clear_error(tmp_path: Path) -> None:
    directory = fake_fashion(tmp_path / "fm")
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz is missing"):
        load_dataset(TrainConfig(fashion_dir=directory))


def test_fashion_splits_are_stratified_fixed_and_disjoint() -> None:
    config = TrainConfig(train_limit=1000, test_limit=200, validation_fraction=0.2, seed=7)
    data = load_dataset(config)
    assert data.labels == LABELS
    assert data.sizes() == {"train": 800, "validation": 200, "test": 200}
    assert data.train.images.shape == (800, 28, 28, 1) and data.train.images.dtype == np.uint8
    # Every class is equally represented (Fashion-MNIST is balanced).
    assert np.bincount(data.train.labels, minlength=10).tolist() == [80] * 10
    assert np.bincount(data.validation.labels, minlength=10).tolist() == [20] * 10
    # Validation comes out of the 60k training images, never the test set.
    assert not set(data.train.indices) & set(data.validation.indices)
    np.testing.assert_array_equal(data.test.indices, np.arange(200))
    again = load_dataset(config)
    np.testing.assert_array_equal(again.validation.indices, data.validation.indices)
    assert again.fingerprint() == data.fingerprint()
    other = load_dataset(config.model_copy(update={"seed": 8}))
    assert not np.array_equal(other.validation.indices, data.validation.indices)
    assert other.fingerprint() != data.fingerprint()


def test_fashion_from_idx_directory_and_test_only(tmp_path: Path) -> None:
    directory = fake_fashion(tmp_path / "fm")
    data = load_dataset(TrainConfig(fashion_dir=directory))
    assert data.sizes() == {"train": 180, "validation": 20, "test": 50}
    assert data.source == str(directory)
    test_only = load_dataset(TrainConfig(fashion_dir=directory, test_limit=10), test_only=True)
    assert test_only.sizes() == {"train": 0, "validation": 0, "test": 10}


def test_stratified_split_never_takes_a_class_whole() -> None:
    labels = np.array([0] * 10 + [1] * 2 + [2])
    kept, held = stratified_split(labels, 0.4, np.random.default_rng(0))
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(13))
    assert np.bincount(labels[held], minlength=3).tolist() == [4, 1, 0]
    assert set(labels[kept]) == {0, 1, 2}


def test_image_folder_decodes_splits_and_skips_corrupt_files(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=20)
    write_corrupt(root / "circle" / "broken.png")
    (root / "square" / "notes.txt").write_text("not an image, ignored")
    config = TrainConfig(data_dir=root, image_size=(32, 24), color_mode="RGB")
    data = load_dataset(config)
    assert data.labels == ["circle", "square", "stripes"]
    assert data.skipped == 1
    assert sum(data.sizes().values()) == 60
    first = next(data.validation.batches(4))
    assert first.shape == (4, 32, 24, 3) and first.dtype == np.uint8
    assert data.input.height == 32 and data.input.width == 24 and data.input.channels == 3
    assert data.preprocessing.color_mode == "RGB"
    for split in (data.train, data.validation, data.test):
        assert set(split.labels) == {0, 1, 2}
    assert load_dataset(config).fingerprint() == data.fingerprint()
    grey = load_dataset(config.model_copy(update={"color_mode": "L", "image_size": (28, 28)}))
    assert next(grey.test.batches(2)).shape == (2, 28, 28, 1)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "does not exist"),
        ("no_classes", "no class sub-folders"),
        ("single_class", "single class"),
        ("empty_class", "has no images"),
        ("all_corrupt", "no readable images"),
        ("class_corrupt", "have no readable images"),
    ],
)
def test_image_folder_errors(tmp_path: Path, layout: str, message: str) -> None:
    root = tmp_path / "data"
    if layout == "no_classes":
        root.mkdir()
        (root / "loose.png").write_bytes(b"")
    elif layout == "single_class":
        make_image_folder(root, classes=("circle",))
    elif layout == "empty_class":
        make_image_folder(root, classes=("circle", "square"))
        (root / "empty").mkdir()
    elif layout == "all_corrupt":
        for name in ("a", "b"):
            write_corrupt(root / name / "x.png")
    elif layout == "class_corrupt":
        make_image_folder(root, classes=("circle", "square"))
        write_corrupt(root / "broken" / "x.jpg")
    with pytest.raises(DatasetError, match=message):
        load_dataset(TrainConfig(data_dir=root))


def test_tf_pipeline_batches_uint8_pixels_and_int_labels(tmp_path: Path) -> None:
    data = load_dataset(TrainConfig(fashion_dir=fake_fashion(tmp_path / "fm")))
    batches = list(to_tf_dataset(data.train, 64, shuffle=True, seed=1))
    assert [len(labels) for _, labels in batches] == [64, 64, 52]
    pixels, labels = batches[0]
    assert pixels.dtype.name == "uint8" and labels.dtype.name == "int32"
    first = np.concatenate(
        [b[1].numpy() for b in to_tf_dataset(data.train, 64, shuffle=True, seed=1)]
    )
    again = np.concatenate(
        [b[1].numpy() for b in to_tf_dataset(data.train, 64, shuffle=True, seed=1)]
    )
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, data.train.labels)  # shuffled
    assert sorted(first.tolist()) == sorted(data.train.labels.tolist())


def test_absent_directory_falls_back_to_the_keras_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import keras

    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (100, 28, 28), dtype=np.uint8), np.arange(100) % 10)
    test = (rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), np.arange(30) % 10)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", lambda: (train, test))
    data = load_dataset(TrainConfig(fashion_dir=tmp_path / "absent"))
    assert data.sizes() == {"train": 90, "validation": 10, "test": 30}
    assert data.source == "keras.datasets.fashion_mnist"
    assert "downloading" in caplog.text

    def offline() -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(DatasetError, match="downloading it failed: network unreachable"):
        load_dataset(TrainConfig(fashion_dir=tmp_path / "absent"))


def test_repeated_pipeline_reshuffles_every_pass_and_never_ends(tmp_path: Path) -> None:
    data = load_dataset(TrainConfig(fashion_dir=fake_fashion(tmp_path / "fm")))
    stream = to_tf_dataset(data.train, len(data.train), shuffle=True, seed=1, repeat=True)
    passes = [labels.numpy() for _, labels in stream.take(3)]  # one batch is one pass here
    assert len(passes) == 3
    for labels in passes:
        assert sorted(labels.tolist()) == sorted(data.train.labels.tolist())
    assert not np.array_equal(passes[0], passes[1])  # a new order each pass
