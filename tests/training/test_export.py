"""The exported SavedModel serves exactly what the in-memory model computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from model_store.schema import InputSpec
from model_store.signature import INPUT_NAME, OUTPUT_NAME, SIGNATURE_NAME
from training.export import export_saved_model, load_signature, run_signature
from training.model import make_model, served_model
from training.profiles import get_profile

SHAPE = InputSpec(height=28, width=28, channels=1)


@pytest.fixture(scope="module")
def model():
    return make_model(get_profile("default").model, SHAPE, 10, seed=5)


def test_reloaded_signature_matches_in_memory_model(model, tmp_path: Path) -> None:
    temperature = 1.7
    export_saved_model(model, tmp_path, temperature, SHAPE)
    assert (tmp_path / "saved_model.pb").is_file() and (tmp_path / "variables").is_dir()
    loaded = tf.saved_model.load(str(tmp_path))
    signature = loaded.signatures[SIGNATURE_NAME]
    batch = np.random.default_rng(1).integers(0, 256, (9, 28, 28, 1), dtype=np.uint8)
    served = signature(**{INPUT_NAME: tf.constant(batch)})[OUTPUT_NAME].numpy()
    expected = tf.nn.softmax(model(batch, training=False) / temperature).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert served.dtype == np.float32
    np.testing.assert_allclose(served.sum(axis=1), 1.0, atol=1e-5)


def test_signature_takes_uint8_pixels_of_any_batch_size(model, tmp_path: Path) -> None:
    export_saved_model(model, tmp_path, 1.0, SHAPE)
    signature = load_signature(tmp_path)
    spec = signature.structured_input_signature[1][INPUT_NAME]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 28, 28, 1]
    batch = np.zeros((1201, 28, 28, 1), dtype=np.uint8)
    assert run_signature(signature, batch).shape == (1201, 10)
    assert run_signature(signature, batch[:0]).shape == (0, 10)


def test_temperature_changes_confidence_not_the_prediction(model, tmp_path: Path) -> None:
    batch = np.random.default_rng(2).integers(0, 256, (16, 28, 28, 1), dtype=np.uint8)
    outputs = {}
    for temperature in (0.5, 3.0):
        directory = tmp_path / str(temperature)
        export_saved_model(model, directory, temperature, SHAPE)
        outputs[temperature] = run_signature(load_signature(directory), batch)
    np.testing.assert_array_equal(outputs[0.5].argmax(1), outputs[3.0].argmax(1))
    assert (outputs[0.5].max(1) > outputs[3.0].max(1)).all()


def test_non_positive_temperature_is_refused(model, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="temperature"):
        export_saved_model(model, tmp_path, 0.0, SHAPE)


def test_mirror_averaged_model_exports_its_averaging(tmp_path: Path) -> None:
    config = get_profile("default").model
    served = served_model(make_model(config, SHAPE, 10, seed=8), config)
    export_saved_model(served, tmp_path, 1.0, SHAPE)
    batch = np.random.default_rng(3).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    probabilities = run_signature(load_signature(tmp_path), batch)
    expected = tf.nn.softmax(served(batch, training=False)).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    mirrored = run_signature(load_signature(tmp_path), batch[:, :, ::-1].copy())
    np.testing.assert_allclose(mirrored, probabilities, atol=1e-5)
