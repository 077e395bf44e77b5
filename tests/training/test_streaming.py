"""Streamed image folders: the shared preprocessing, skipped files, the cache, bounded memory."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.photo_folder import make_photo_folder
from model_store import ModelStore
from model_store.preprocessing import ImageError, preprocess_file
from training.config import TrainConfig
from training.datasets import load_dataset
from training.errors import DatasetError
from training.pipeline import train_and_publish
from training.streaming import DecodedSplit, FileSplit, train_stream

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("streaming_child.py")


def digest(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """45 photos (3 sizes, JPEG/PNG, RGB/greyscale) and 4 broken files: 2 that are not images,
    2 truncated JPEGs whose header still parses (found only when their pixels are decoded)."""
    root = tmp_path_factory.mktemp("photos") / "catalogue"
    return make_photo_folder(root, 45, broken=4).root


def test_streamed_pixels_are_the_shared_preprocessing(photos: Path, tmp_path: Path) -> None:
    config = TrainConfig(data_dir=photos, image_size=(40, 32), color_mode="RGB", seed=3)
    data = load_dataset(config)
    assert isinstance(data.train, FileSplit) and isinstance(data.validation, DecodedSplit)
    assert data.streaming is not None
    paths = sorted(p for p in photos.rglob("*") if p.is_file())
    by_index = [p for name in data.labels for p in sorted((photos / name).iterdir())]
    assert len(by_index) == len(paths) == 49
    decoded = np.concatenate(list(data.test.batches(7)))
    assert decoded.shape == (len(data.test), 40, 32, 3)
    for pixels, index in zip(decoded, data.test.indices, strict=True):
        np.testing.assert_array_equal(
            pixels, preprocess_file(by_index[index], data.preprocessing, data.input)
        )
    # One pass of the training stream: every decodable training file once, as preprocessed.
    expected = set()
    for index in data.train.indices:
        with contextlib.suppress(ImageError):
            expected.add(digest(preprocess_file(by_index[index], data.preprocessing, data.input)))
    stream = train_stream(data.train, data.streaming.decoder, data.streaming.options, 5, seed=1)
    seen = [digest(pixels.numpy()) for pixels, _ in stream.unbatch().take(len(expected))]
    assert set(seen) == expected and len(seen) == len(expected)
    # Broken files: 2 refused from their header before training, the truncated ones (wherever
    # the split put them) when decoded; every one counted exactly once.
    assert data.skipped + len(data.train_skips) == 4


def test_cache_reuses_decoded_pixels(photos: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    config = TrainConfig(data_dir=photos, image_size=(24, 24), color_mode="L", cache_dir=cache)
    first = load_dataset(config)
    assert first.streaming is not None
    written = sorted(p.name for p in cache.iterdir())
    assert any(name.endswith("-validation.u8") for name in written)
    stream = train_stream(first.train, first.streaming.decoder, first.streaming.options, 8, 0)
    per_pass = -(-len(first.train) // 8)  # batches in one pass (fewer: unreadable files)
    assert len(list(stream.take(2 * per_pass))) == 2 * per_pass  # the first pass is cached
    assert any(p.suffix == ".index" for p in cache.iterdir())
    test_file = next(cache.glob("*-test.u8"))
    stamp = test_file.stat().st_mtime_ns
    again = load_dataset(config)
    assert test_file.stat().st_mtime_ns == stamp  # reused, not decoded again
    np.testing.assert_array_equal(again.test.labels, first.test.labels)
    assert again.fingerprint() == first.fingerprint()
    other = load_dataset(config.model_copy(update={"image_size": (20, 20)}))
    assert other.fingerprint() != first.fingerprint()  # other pixels, other cache files


def test_folder_of_unreadable_files_stops_before_training(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            (root / name / f"{i}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    store = ModelStore(tmp_path / "models")
    with pytest.raises(DatasetError, match=r"no readable images .* \(6 file"):
        train_and_publish(TrainConfig(data_dir=root), store, progress=False)
    assert not store.root.exists() or store.models() == []


@pytest.mark.slow
def test_tiny_profile_trains_on_thousands_of_photos_in_bounded_memory(tmp_path: Path) -> None:
    """2,400 photos at 224x224x3 are 361 MB of decoded pixels; streamed, loading and training
    them must add well under half of that to the process's peak resident memory."""
    count, broken, side = 2400, 6, 224
    folder = make_photo_folder(tmp_path / "catalogue", count, broken=broken)
    warmup = make_photo_folder(tmp_path / "warmup", 24, seed=1)
    # glibc gives each decoding thread its own malloc arena, which keeps freed memory; two
    # arenas keep the measurement about the data, not the allocator.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "2"}
    command = [
        sys.executable,
        str(CHILD),
        str(folder.root),
        str(warmup.root),
        str(tmp_path / "models"),
        str(side),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["labels"] == list(folder.classes)
    assert result["splits"]["skipped"] == broken
    assert sum(v for k, v in result["splits"].items() if k != "skipped") == count
    decoded_bytes = count * side * side * 3
    added = (result["peak_training_kib"] - result["rss_before_kib"]) * 1024
    assert added < decoded_bytes / 2, f"peak grew by {added / 2**20:.0f} MiB"
    assert ModelStore(tmp_path / "models").versions("catalogue") == [1]
