"""verify(): checksums and layout without TensorFlow, and real loads of the SavedModel and
model.onnx with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from store_helpers import LABELS, VARIABLES_FILE, build_tiny_savedmodel, make_metadata, publish_fake

import model_store.verify as verify_module
from model_store import ModelStore
from model_store.checksums import sha256_file
from model_store.signature import ONNX_FILE


@pytest.fixture(scope="module")
def tiny_savedmodel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_savedmodel(tmp_path_factory.mktemp("tiny") / "export", classes=len(LABELS))


def test_untouched_version_verifies(store: ModelStore) -> None:
    publish_fake(store)
    assert store.verify("fashion", 1, load=False) == []


def test_tampered_variables_file_is_caught(store: ModelStore) -> None:
    publish_fake(store)
    variables = store.version_dir("fashion", 1) / VARIABLES_FILE
    data = bytearray(variables.read_bytes())
    data[10] ^= 0xFF
    variables.write_bytes(bytes(data))
    problems = store.verify("fashion", 1, load=False)
    assert problems == [f"{VARIABLES_FILE} does not match its checksum (modified or corrupt)"]


def test_missing_and_extra_files_are_caught(store: ModelStore) -> None:
    publish_fake(store)
    version_dir = store.version_dir("fashion", 1)
    (version_dir / "variables/variables.index").unlink()
    (version_dir / "assets").mkdir()
    (version_dir / "assets/vocab.txt").write_text("sneaker")
    problems = store.verify("fashion", 1, load=False)
    assert "variables/variables.index is missing" in problems
    assert "assets/vocab.txt is not covered by the checksums in metadata.json" in problems


def test_missing_saved_model_and_variables_are_caught(store: ModelStore) -> None:
    publish_fake(store)
    version_dir = store.version_dir("fashion", 1)
    (version_dir / "saved_model.pb").unlink()
    for path in (version_dir / "variables").iterdir():
        path.unlink()
    (version_dir / "variables").rmdir()
    problems = store.verify("fashion", 1, load=False)
    assert "saved_model.pb is missing" in problems
    assert "variables/ is missing" in problems


def test_evaluation_changes_do_not_fail_verify(store: ModelStore) -> None:
    publish_fake(store)
    (store.version_dir("fashion", 1) / "evaluation/report.json").write_text("{}")
    assert store.verify("fashion", 1, load=False) == []


def test_metadata_that_lies_about_its_version_is_caught(store: ModelStore) -> None:
    publish_fake(store)
    path = store.version_dir("fashion", 1) / "metadata.json"
    document = json.loads(path.read_text())
    document["version"] = 5
    document["files"]["../../etc/passwd"] = "0" * 64
    path.write_text(json.dumps(document))
    problems = store.verify("fashion", 1, load=False)
    assert "metadata.json says version 5, not 1" in problems
    assert "checksum entry '../../etc/passwd' points outside the version" in problems
    path.write_text("{")
    assert store.verify("fashion", 1, load=False)[0].startswith("metadata.json is missing or")


@pytest.mark.slow
def test_real_savedmodel_loads_and_answers(store: ModelStore, tiny_savedmodel: Path) -> None:
    store.publish("fashion", tiny_savedmodel, make_metadata())
    assert store.verify("fashion", 1, load=True) == []


@pytest.mark.slow
def test_label_count_mismatch_is_caught(store: ModelStore, tiny_savedmodel: Path) -> None:
    labels = [f"class{i}" for i in range(10)]
    store.publish("fashion", tiny_savedmodel, make_metadata(labels=labels))
    problems = store.verify("fashion", 1, load=True)
    assert problems == ["probabilities has shape [2, 3], expected [batch, 10] for 10 labels"]


@pytest.mark.slow
def test_unloadable_savedmodel_is_caught(store: ModelStore) -> None:
    publish_fake(store)  # checksums fine, but saved_model.pb is not a SavedModel
    problems = store.verify("fashion", 1, load=True)
    assert len(problems) == 1
    assert problems[0].startswith("SavedModel does not load")


@pytest.mark.slow
def test_trained_model_verifies(trained_store: Any) -> None:
    """The real model trained and published by training (fixture in tests/conftest.py)."""
    store, name, version = trained_store.store, trained_store.name, trained_store.version
    assert store.verify(name, version, load=True) == []
    assert store.metadata(name, version).files == trained_store.metadata.files


def copy_version(trained_store: Any, tmp_path: Path) -> tuple[ModelStore, Path]:
    """A private copy of the trained store (tests/conftest.py), to damage; and its version."""
    root = shutil.copytree(trained_store.root, tmp_path / "copy")
    store = ModelStore(root)
    return store, store.version_dir(trained_store.name, trained_store.version)


def rewrite_checksum(version_dir: Path, relative: str) -> None:
    """Record the file's current checksum, as if it had been published like this."""
    path = version_dir / "metadata.json"
    document = json.loads(path.read_text())
    document["files"][relative] = sha256_file(version_dir / relative)
    path.write_text(json.dumps(document))


@pytest.mark.slow
def test_corrupt_onnx_model_is_caught(trained_store: Any, tmp_path: Path) -> None:
    store, version_dir = copy_version(trained_store, tmp_path)
    onnx_file = version_dir / ONNX_FILE
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    problems = store.verify(trained_store.name, trained_store.version, load=False)
    assert problems == [f"{ONNX_FILE} does not match its checksum (modified or corrupt)"]

    onnx_file.write_bytes(b"not an onnx model")
    rewrite_checksum(version_dir, ONNX_FILE)
    problems = store.verify(trained_store.name, trained_store.version, load=True)
    assert len(problems) == 1
    assert problems[0].startswith(f"{ONNX_FILE} does not load or run in ONNX Runtime: ")


@pytest.mark.slow
def test_onnx_model_that_disagrees_with_the_savedmodel_is_caught(
    trained_store: Any, tmp_path: Path
) -> None:
    import onnx
    from onnx import numpy_helper

    store, version_dir = copy_version(trained_store, tmp_path)
    model = onnx.load(str(version_dir / ONNX_FILE))
    bias = next(t for t in model.graph.initializer if "logits" in t.name and t.dims == [10])
    values = numpy_helper.to_array(bias).copy()
    values[0] += 3.0  # favour the first class
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    onnx.save(model, str(version_dir / ONNX_FILE))
    rewrite_checksum(version_dir, ONNX_FILE)  # checksums alone would not see it now

    problems = store.verify(trained_store.name, trained_store.version, load=True)
    assert len(problems) == 1
    assert problems[0].startswith(f"{ONNX_FILE} disagrees with the SavedModel: max abs difference")


@pytest.mark.slow
def test_without_tensorflow_model_onnx_is_still_loaded_and_called(
    trained_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A serving install without TensorFlow checks what it can run."""
    store, version_dir = copy_version(trained_store, tmp_path)
    monkeypatch.setattr(verify_module, "_installed", lambda module: module != "tensorflow")
    assert verify_module.loads_checked(version_dir) == [f"{ONNX_FILE} load"]
    assert store.verify(trained_store.name, trained_store.version, load=True) == []

    (version_dir / ONNX_FILE).write_bytes(b"not an onnx model")
    rewrite_checksum(version_dir, ONNX_FILE)
    problems = store.verify(trained_store.name, trained_store.version, load=True)
    assert [problem.split(":")[0] for problem in problems] == [
        f"{ONNX_FILE} does not load or run in ONNX Runtime"
    ]
