"""Export a trained model as a SavedModel with one calibrated serving signature.

The signature keeps the contract in `model_store.signature` (uint8 pixels -> softmax(logits / T)):
the graph holds the normalisation and the temperature.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from model_store.schema import InputSpec
from model_store.signature import INPUT_NAME, OUTPUT_NAME, SIGNATURE_NAME
from training.batches import BatchSource, iterate_batches


class CalibratedClassifier(tf.Module):
    """A Keras model (uint8 pixels -> logits) plus the temperature that calibrates it."""

    def __init__(self, model: keras.Model, temperature: float, input: InputSpec) -> None:
        super().__init__(name="calibrated_classifier")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.model = model
        # Seed-generator states of the (inactive) random layers are captured by the traced
        # graph but not tracked by Keras; listing every variable makes them reachable.
        self.model_variables = list(model.variables)
        self.temperature = float(temperature)  # a constant in the graph
        spec = tf.TensorSpec(
            [None, input.height, input.width, input.channels], tf.uint8, name=INPUT_NAME
        )
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = tf.cast(self.model(pixels, training=False), tf.float32)
        return {OUTPUT_NAME: tf.nn.softmax(logits / self.temperature, axis=-1)}


def export_saved_model(
    model: keras.Model, directory: Path, temperature: float, input: InputSpec
) -> None:
    """Write the SavedModel files (saved_model.pb, variables/) into `directory`."""
    module = CalibratedClassifier(model, temperature, input)
    tf.saved_model.save(module, str(directory), signatures={SIGNATURE_NAME: module.serve})


def load_signature(directory: Path) -> tf.types.experimental.ConcreteFunction:
    """The serving signature of a SavedModel on disk, loaded the way the app loads it."""
    loaded = tf.saved_model.load(str(directory))
    signature = loaded.signatures[SIGNATURE_NAME]
    signature._loaded_module = loaded  # keep the variables alive as long as the function
    return signature


def run_signature(
    signature: tf.types.experimental.ConcreteFunction,
    images: np.ndarray | BatchSource,
    batch_size: int = 500,
) -> np.ndarray:
    """Probabilities float32 `[N, classes]` from a serving signature, in batches."""
    batches = iterate_batches(images, batch_size)
    outputs = [
        signature(**{INPUT_NAME: tf.constant(batch)})[OUTPUT_NAME].numpy() for batch in batches
    ]
    if not outputs:
        num_classes = signature.structured_outputs[OUTPUT_NAME].shape[-1]
        return np.zeros((0, num_classes), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32)
