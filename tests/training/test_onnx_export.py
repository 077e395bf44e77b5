"""model.onnx: published beside the SavedModel only when ONNX Runtime gives the same outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from model_store import ModelStore
from model_store.checksums import sha256_file
from model_store.onnx_model import load_onnx, run_onnx
from model_store.signature import INPUT_NAME, ONNX_FILE, OUTPUT_NAME
from training import onnx_export
from training.config import default_fashion_dir
from training.errors import OnnxExportError
from training.export import load_signature, run_signature
from training.fashion import load_part
from training.pipeline import train_and_publish
from training.profiles import get_profile

if TYPE_CHECKING:  # tests/conftest.py; never imported at run time (several conftest modules)
    from conftest import TrainedStore

TEST_LIMIT = 300  # the session fixture's test split (tests/conftest.py)


def test_published_onnx_model_gives_the_savedmodels_outputs(trained_store: TrainedStore) -> None:
    version_dir = trained_store.store.version_dir("fashion", trained_store.version)
    meta = trained_store.metadata
    assert meta.files[ONNX_FILE] == sha256_file(version_dir / ONNX_FILE)
    session = load_onnx(version_dir / ONNX_FILE)
    (pixels,), (probabilities,) = session.get_inputs(), session.get_outputs()
    assert (pixels.name, pixels.type) == (INPUT_NAME, "tensor(uint8)")
    assert pixels.shape[1:] == [28, 28, 1]
    assert (probabilities.name, probabilities.type) == (OUTPUT_NAME, "tensor(float)")
    operators = {node.op_type for node in onnx.load(version_dir / ONNX_FILE).graph.node}
    # Flatten's shape is a constant, not computed on every call (training.onnx_graph), and
    # 1/255 and the temperature are in the weights (training.onnx_scales).
    assert "Shape" not in operators
    assert "Mul" not in operators

    images, _ = load_part(default_fashion_dir(), "t10k")
    served = run_signature(load_signature(version_dir), images[:TEST_LIMIT])
    converted = run_onnx(session, images[:TEST_LIMIT])
    assert np.max(np.abs(converted - served)) <= 1e-4
    np.testing.assert_array_equal(converted.argmax(axis=1), served.argmax(axis=1))

    record = meta.onnx
    assert record is not None and record.opset == 17 and record.images == TEST_LIMIT
    assert record.max_abs_difference <= record.tolerance == 1e-4 and record.top1_agreement == 1
    assert set(record.converter_versions) == {"tf2onnx", "onnx", "onnxruntime"}
    report = json.loads((version_dir / "evaluation" / "report.json").read_text())
    assert report["onnx"] == record.model_dump(mode="json")
    markdown = (version_dir / "evaluation" / "report.md").read_text()
    assert "## ONNX export" in markdown and f"| {TEST_LIMIT}/{TEST_LIMIT} | all |" in markdown


def shift_logit_bias(path: Path) -> None:
    """Perturb a converted graph: add 3 to the first class's logit bias."""
    model = onnx.load(str(path))
    bias = next(t for t in model.graph.initializer if "logits" in t.name and t.dims == [10])
    values = numpy_helper.to_array(bias).copy()
    values[0] += 3.0
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    onnx.save(model, str(path))


def test_a_conversion_that_does_not_match_is_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    convert = onnx_export.convert_signature

    def perturbed_convert(signature: object, output: Path, *args: object) -> None:
        convert(signature, output, *args)
        shift_logit_bias(output)

    monkeypatch.setattr(onnx_export, "convert_signature", perturbed_convert)
    store = ModelStore(tmp_path / "models")
    config = get_profile("tiny").model_copy(update={"train_limit": 100, "test_limit": 20})
    with pytest.raises(OnnxExportError) as refused:
        train_and_publish(config, store, progress=False)

    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("model.onnx does not match the SavedModel on the 20 evaluation")
    assert "max abs difference" in message and "top-1 agreement" in message
    assert store.models() == []
    leftovers = [p for p in store.root.rglob("*") if p.is_file() and p.name != ".lock"]
    assert leftovers == []


def test_a_conversion_that_fails_is_reported_in_one_line(
    trained_store: TrainedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_convert(*args: object) -> None:
        raise ValueError("unsupported op\nsee the log")

    monkeypatch.setattr(onnx_export, "convert_signature", broken_convert)
    signature = load_signature(trained_store.store.version_dir("fashion", trained_store.version))
    images = np.zeros((2, 28, 28, 1), dtype=np.uint8)
    with pytest.raises(OnnxExportError) as refused:
        onnx_export.export_onnx(tmp_path, signature, images, run_signature(signature, images))
    assert str(refused.value) == "ONNX conversion failed: ValueError: unsupported op see the log"
