"""verify(): checksums and layout without TensorFlow, and a real SavedModel load with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from store_helpers import LABELS, VARIABLES_FILE, build_tiny_savedmodel, make_metadata, publish_fake

from model_store import ModelStore


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
