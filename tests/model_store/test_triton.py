"""The store as a Triton model repository: each model folder's config.pbtxt, parsed as Triton
parses it, and labels.txt, kept current as versions come and go and aliases move."""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import numpy as np
import pytest
from google.protobuf import text_format
from store_helpers import (
    LABELS,
    publish_fake,
    publish_fake_onnx,
    run_cli,
    spec_dims,
    start_staging_writer,
)
from tritonclient.grpc import model_config_pb2

from model_store import InputSpec, ModelStore
from model_store import store as store_module
from model_store.errors import ModelStoreError
from model_store.signature import INPUT_NAME, ONNX_FILE, OUTPUT_NAME
from model_store.triton import CONFIG_FILE, LABELS_FILE, MAX_BATCH_SIZE, MAX_QUEUE_DELAY_US

ModelConfig = model_config_pb2.ModelConfig
DataType = model_config_pb2.DataType


def read_config(store: ModelStore, name: str = "fashion") -> Any:
    """config.pbtxt parsed into Triton's own `inference.ModelConfig` (unknown fields fail)."""
    text = (store.root / name / CONFIG_FILE).read_text(encoding="utf-8")
    return text_format.Parse(text, ModelConfig())


def served(store: ModelStore, name: str = "fashion") -> list[int]:
    config = read_config(store, name)
    assert config.version_policy.WhichOneof("policy_choice") == "specific"
    return list(config.version_policy.specific.versions)


def triton_version(entry: str) -> int | None:
    """The version Triton's VersionsToLoad (core/src/model_repository_manager/model_lifecycle.cc)
    makes of a model folder's sub-directory: `std::stoll` of the name, which reads a leading
    integer and ignores the rest; names with a leading zero (but "0") are skipped."""
    if len(entry) > 1 and entry.startswith("0"):
        return None
    match = re.match(r"\s*([+-]?[0-9]+)", entry)
    return int(match.group(1)) if match else None


def test_config_matches_metadata_and_model_onnx(store: ModelStore) -> None:
    version = publish_fake_onnx(store)
    metadata = store.metadata("fashion", version)
    config = read_config(store)

    assert config.name == "fashion"
    assert config.backend == "onnxruntime"
    assert config.max_batch_size == MAX_BATCH_SIZE
    [tensor_in] = config.input
    assert tensor_in.name == INPUT_NAME
    assert tensor_in.data_type == DataType.Value("TYPE_UINT8")
    assert list(tensor_in.dims) == spec_dims(metadata.input)  # no batch dimension
    [tensor_out] = config.output
    assert tensor_out.name == OUTPUT_NAME == metadata.output
    assert tensor_out.data_type == DataType.Value("TYPE_FP32")
    assert list(tensor_out.dims) == [len(metadata.labels)]
    assert tensor_out.label_filename == LABELS_FILE
    assert config.dynamic_batching.max_queue_delay_microseconds == MAX_QUEUE_DELAY_US
    assert served(store) == [version]
    labels = (store.root / "fashion" / LABELS_FILE).read_text(encoding="utf-8")
    assert labels.splitlines() == metadata.labels == LABELS

    # The tensors the config names are those of the version's model.onnx, batch first.
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(store.version_dir("fashion", version) / ONNX_FILE), providers=["CPUExecutionProvider"]
    )
    [model_in], [model_out] = session.get_inputs(), session.get_outputs()
    assert (model_in.name, model_in.type) == (tensor_in.name, "tensor(uint8)")
    assert (model_out.name, model_out.type) == (tensor_out.name, "tensor(float)")
    assert model_in.shape[1:] == list(tensor_in.dims)
    batch = np.zeros((MAX_BATCH_SIZE, *tensor_in.dims), dtype=np.uint8)
    [probabilities] = session.run([OUTPUT_NAME], {INPUT_NAME: batch})
    assert probabilities.shape == (MAX_BATCH_SIZE, *tensor_out.dims)


def test_config_follows_publish_promote_rollback_and_gc(store: ModelStore) -> None:
    publish_fake_onnx(store)
    publish_fake_onnx(store)
    assert served(store) == [2]  # a request without a version gets 2, as the service serves
    publish_fake_onnx(store)
    store.promote("fashion", 1, "stable")
    assert served(store) == [1, 3]  # stable stays reachable by number
    store.promote("fashion", 2, "stable")
    assert served(store) == [2, 3]
    assert store.rollback("fashion") == 1
    assert served(store) == [1, 3]
    store.promote("fashion", 3, "stable")
    assert store.gc("fashion", keep=1) == [1, 2]
    assert served(store) == [3]
    assert store.versions("fashion") == [3]


def test_versions_without_model_onnx_are_never_served(store: ModelStore) -> None:
    old = publish_fake(store)  # published before ONNX export
    assert not (store.root / "fashion" / CONFIG_FILE).exists()
    new = publish_fake_onnx(store)
    store.promote("fashion", old, "stable")
    assert served(store) == [new]
    text = (store.root / "fashion" / CONFIG_FILE).read_text(encoding="utf-8")
    assert f"# Not served: version {old} (no {ONNX_FILE})." in text

    newest_without = publish_fake(store)  # e.g. published by an older trainer
    assert served(store) == [new]
    model = store.triton_config("fashion")
    assert model.versions == (new,)
    assert model.not_served == {old: "(no model.onnx)", newest_without: "(no model.onnx)"}


def test_aliased_version_with_other_labels_or_input_is_left_out(store: ModelStore) -> None:
    other_labels = publish_fake_onnx(store, labels=["cat", "dog"])
    other_input = publish_fake_onnx(store, spec=InputSpec(height=32, width=32, channels=1))
    store.promote("fashion", other_labels, "stable")
    store.promote("fashion", other_input, "canary")
    newest = publish_fake_onnx(store)
    model = store.triton_config("fashion")
    assert model.versions == (newest,)
    assert model.not_served == {
        other_labels: f"(aliased, but its labels differ from version {newest}'s)",
        other_input: f"(aliased, but its input differs from version {newest}'s)",
    }
    config = read_config(store)
    assert list(config.output[0].dims) == [len(LABELS)]
    assert list(config.input[0].dims) == [28, 28, 1]


def test_config_goes_when_no_version_can_be_served(store: ModelStore) -> None:
    publish_fake_onnx(store)
    publish_fake(store)
    store.gc("fashion", keep=1)
    model_dir = store.root / "fashion"
    assert not (model_dir / CONFIG_FILE).exists() and not (model_dir / LABELS_FILE).exists()
    with pytest.raises(ModelStoreError, match=r"no version Triton's ONNX Runtime backend can"):
        store.triton_config("fashion")


def test_a_failed_config_write_never_fails_the_publish(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def disk_full(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.triton, "write", disk_full)
    with caplog.at_level(logging.WARNING, logger="model_store.store"):
        assert publish_fake_onnx(store) == 1
    assert store.versions("fashion") == [1]
    assert "python -m model_store triton-config fashion" in caplog.text
    monkeypatch.undo()
    assert store.triton_config("fashion").versions == (1,)
    assert served(store) == [1]


def test_labels_with_a_line_break_are_refused(
    store: ModelStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Triton reads labels.txt line by line: such a label would shift every label after it."""
    with caplog.at_level(logging.WARNING, logger="model_store.store"):
        assert publish_fake_onnx(store, labels=["a\nb", "c"]) == 1
    assert "holds a line break" in caplog.text
    assert not (store.root / "fashion" / CONFIG_FILE).exists()
    assert not (store.root / "fashion" / LABELS_FILE).exists()
    with pytest.raises(ModelStoreError, match="line break"):
        store.triton_config("fashion")


def test_triton_sees_only_the_versions(store: ModelStore) -> None:
    """Nothing else the store keeps in a model folder parses as a version for Triton."""
    publish_fake_onnx(store)
    publish_fake_onnx(store)
    store.promote("fashion", 1, "stable")
    store.promote("fashion", 2, "stable")  # writes alias_history.json
    store.gc("fashion", keep=1)  # a crash mid-gc would leave its .trash-* directory
    model_dir = store.root / "fashion"
    (model_dir / ".trash-1-0a1b2c3d").mkdir()
    child, staged = start_staging_writer(store.root)  # a training still writing
    try:
        entries = os.listdir(model_dir)
        assert {"aliases.json", "alias_history.json", CONFIG_FILE, LABELS_FILE} <= set(entries)
        assert staged.name in entries
        subdirs = [e for e in entries if (model_dir / e).is_dir()]
        triton_versions = {triton_version(e) for e in subdirs} - {None}
        assert triton_versions == set(store.versions("fashion")) == {2}
    finally:
        child.kill()
        child.wait()
    leftovers = [e for e in os.listdir(model_dir) if e.endswith(".tmp")]
    assert leftovers == []  # config.pbtxt and labels.txt were renamed into place


def test_cli_writes_the_config_for_a_store_published_before(store: ModelStore) -> None:
    publish_fake(store)
    publish_fake_onnx(store)
    model_dir = store.root / "fashion"
    (model_dir / CONFIG_FILE).unlink()  # as a store published before the store wrote it
    (model_dir / LABELS_FILE).unlink()
    result = run_cli("--store", str(store.root), "triton-config", "fashion")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"fashion: wrote {model_dir / CONFIG_FILE} and {LABELS_FILE}",
        "fashion: Triton serves version(s) 2 (default 2); not served: 1 (no model.onnx)",
    ]
    assert served(store) == [2]


def test_cli_refuses_a_model_without_model_onnx(store: ModelStore) -> None:
    publish_fake(store)
    result = run_cli("--store", str(store.root), "triton-config", "fashion")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error: model 'fashion' has no version Triton's ONNX Runtime backend" in result.stderr
    missing = run_cli("--store", str(store.root), "triton-config", "shoes")
    assert (missing.returncode, "model 'shoes' has no versions" in missing.stderr) == (1, True)


@pytest.mark.slow
def test_config_of_a_trained_version_matches_its_model_onnx(trained_store: Any) -> None:
    """The real export (tf2onnx) passes the ONNX Runtime backend's check of the config
    (onnxruntime_backend CompareDimsSupported): same names and types, a dynamic first
    dimension where max_batch_size > 0, then exactly the config's dims."""
    import onnxruntime

    config = read_config(trained_store.store)
    metadata = trained_store.metadata
    version_dir = trained_store.store.version_dir("fashion", trained_store.version)
    session = onnxruntime.InferenceSession(
        str(version_dir / ONNX_FILE), providers=["CPUExecutionProvider"]
    )
    [model_in], [model_out] = session.get_inputs(), session.get_outputs()
    assert (model_in.name, model_in.type) == (config.input[0].name, "tensor(uint8)")
    assert (model_out.name, model_out.type) == (config.output[0].name, "tensor(float)")
    assert not isinstance(model_in.shape[0], int)  # symbolic, -1 to the backend
    assert not isinstance(model_out.shape[0], int)
    assert model_in.shape[1:] == list(config.input[0].dims) == spec_dims(metadata.input)
    assert model_out.shape[1:] == list(config.output[0].dims) == [len(metadata.labels)]
    labels = (trained_store.root / "fashion" / LABELS_FILE).read_text(encoding="utf-8")
    assert labels.splitlines() == metadata.labels
    assert list(config.version_policy.specific.versions) == [trained_store.version]
