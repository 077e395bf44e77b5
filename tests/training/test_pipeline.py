"""train_and_publish and evaluate_version against a real store and real data."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import pytest
import tensorflow as tf
from image_folders import make_image_folder

from model_store import ModelStore
from model_store.preprocessing import fashion_mnist_spec, preprocess_file
from model_store.schema import METADATA_FILE, ModelMetadata, TestMetrics
from training import pipeline
from training.config import TrainConfig, default_fashion_dir
from training.errors import DatasetError
from training.export import load_signature, run_signature
from training.fashion import LABELS, load_part
from training.pipeline import evaluate_version, train_and_publish
from training.profiles import get_profile

if TYPE_CHECKING:  # tests/conftest.py; never imported at run time (several conftest modules)
    from conftest import TrainedStore

# The limits the session fixture trains with (tests/conftest.py).
TRAIN_LIMIT, TEST_LIMIT = 600, 300


def test_published_metadata_describes_the_model(trained_store: TrainedStore) -> None:
    meta = trained_store.metadata
    assert meta.training.hyperparameters["train_limit"] == TRAIN_LIMIT
    assert trained_store.store.versions("fashion") == [meta.version]
    on_disk = trained_store.store.metadata("fashion", meta.version)
    assert on_disk == meta
    assert meta.labels == LABELS
    assert (meta.input.height, meta.input.width, meta.input.channels) == (28, 28, 1)
    assert meta.preprocessing == fashion_mnist_spec()
    assert meta.dataset.name == "fashion-mnist"
    assert meta.dataset.splits == {
        "train": TRAIN_LIMIT * 9 // 10,
        "validation": TRAIN_LIMIT // 10,
        "test": TEST_LIMIT,
    }
    assert meta.dataset.fingerprint.startswith("sha256:")
    assert meta.training.profile == "tiny" and meta.training.epochs_run == 1
    assert meta.training.hyperparameters["test_limit"] == TEST_LIMIT
    assert meta.training.hyperparameters["model"]["block_filters"] == [16, 32]
    assert meta.versions.tensorflow == tf.__version__ and meta.versions.keras == keras.__version__
    test = meta.metrics.test
    assert 0.4 < test.accuracy <= 1.0  # one epoch on 540 images; chance is 0.1
    assert test.temperature is not None and test.temperature > 0
    assert set(test.per_class) == set(LABELS)
    assert sum(c.support for c in test.per_class.values()) == TEST_LIMIT
    assert 0 < meta.metrics.validation["accuracy"] <= 1
    assert meta.files and "saved_model.pb" in meta.files


def test_published_version_verifies_and_has_its_evaluation(trained_store: TrainedStore) -> None:
    store, version = trained_store.store, trained_store.version
    assert store.verify("fashion", version) == []
    evaluation = store.version_dir("fashion", version) / "evaluation"
    for name in ("report.json", "report.md", "confusion_matrix.png", "learning_curves.png",
                 "reliability.png", "predictions.npz"):  # fmt: skip
        assert (evaluation / name).is_file(), name
    report = json.loads((evaluation / "report.json").read_text())
    assert report["history"]["loss"] and len(report["history"]["val_accuracy"]) == 1


def test_predictions_are_the_exported_signature_on_the_t10k_images(
    trained_store: TrainedStore,
) -> None:
    version_dir = trained_store.store.version_dir("fashion", trained_store.version)
    saved = np.load(version_dir / "evaluation" / "predictions.npz")
    images, labels = load_part(default_fashion_dir(), "t10k")
    np.testing.assert_array_equal(saved["indices"], np.arange(TEST_LIMIT))
    np.testing.assert_array_equal(saved["labels"], labels[:TEST_LIMIT])
    served = run_signature(load_signature(version_dir), images[:TEST_LIMIT])
    np.testing.assert_allclose(saved["probabilities"], served, atol=1e-6)
    accuracy = float(np.mean(served.argmax(1) == labels[:TEST_LIMIT]))
    assert accuracy == pytest.approx(trained_store.metadata.metrics.test.accuracy)


def assert_same_metrics(actual: TestMetrics, expected: TestMetrics) -> None:
    """Equal up to float round-off (re-evaluation recovers the uncalibrated probabilities)."""
    assert actual.per_class == expected.per_class
    numbers, reference = actual.model_dump(exclude={"per_class"}), expected.model_dump()
    assert numbers == pytest.approx({k: reference[k] for k in numbers}, rel=1e-4, abs=1e-6)


def copy_store(trained_store: TrainedStore, tmp_path: Path) -> ModelStore:
    root = tmp_path / "copy"
    shutil.copytree(trained_store.root, root)
    return ModelStore(root)


def test_evaluate_version_refreshes_only_the_evaluation(
    trained_store: TrainedStore, tmp_path: Path
) -> None:
    store = copy_store(trained_store, tmp_path)
    version_dir = store.version_dir("fashion", trained_store.version)
    evaluation = version_dir / "evaluation"
    (evaluation / "report.md").unlink()
    (evaluation / "stale.txt").write_text("from an older evaluation")
    metadata_bytes = (version_dir / METADATA_FILE).read_bytes()

    metrics = evaluate_version(store, "fashion", "latest")

    assert_same_metrics(metrics, trained_store.metadata.metrics.test)
    assert (evaluation / "report.md").is_file() and not (evaluation / "stale.txt").exists()
    assert "## ONNX export" in (evaluation / "report.md").read_text()  # the publish-time parity
    report = json.loads((evaluation / "report.json").read_text())
    assert len(report["history"]["loss"]) == 1  # the learning curves survive re-evaluation
    assert (version_dir / METADATA_FILE).read_bytes() == metadata_bytes
    assert store.verify("fashion", trained_store.version) == []


def test_failures_leave_the_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(tmp_path / "models")
    with pytest.raises(DatasetError, match="does not exist"):
        train_and_publish(TrainConfig(data_dir=tmp_path / "nowhere"), store, progress=False)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "write_evaluation", disk_full)
    config = get_profile("tiny").model_copy(update={"train_limit": 100, "test_limit": 20})
    with pytest.raises(OSError, match="No space left"):
        train_and_publish(config, store, progress=False)
    leftovers = list(store.root.rglob("*")) if store.root.exists() else []
    assert [p for p in leftovers if p.name != ".lock" and p.is_file()] == []
    assert store.models() == []


def test_train_and_evaluate_an_image_folder(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=24)
    store = ModelStore(tmp_path / "models")
    config = get_profile("tiny").model_copy(
        update={"data_dir": root, "image_size": (32, 32), "color_mode": "RGB", "epochs": 2}
    )
    meta = train_and_publish(config, store, "shapes", progress=False)
    assert isinstance(meta, ModelMetadata) and meta.version == 1
    assert meta.labels == ["circle", "square", "stripes"]
    assert (meta.input.height, meta.input.width, meta.input.channels) == (32, 32, 3)
    assert meta.preprocessing.color_mode == "RGB"
    assert meta.dataset.source == str(root.resolve())
    assert sum(meta.dataset.splits.values()) == 72
    assert store.verify("shapes", 1) == []

    # What the app does with an upload: the recorded spec, then the signature.
    version_dir = store.version_dir("shapes", 1)
    pixels = preprocess_file(root / "circle" / "000.png", meta.preprocessing, meta.input)
    probabilities = run_signature(load_signature(version_dir), pixels[None])
    assert probabilities.shape == (1, 3)
    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-5)

    assert_same_metrics(evaluate_version(store, "shapes", 1), meta.metrics.test)
