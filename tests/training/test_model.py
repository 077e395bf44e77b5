"""make_model: uint8 pixels in, logits out; pure; augmentation only while training."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from model_store.schema import InputSpec
from training.config import ModelConfig
from training.model import make_model, served_model
from training.profiles import get_profile


def same_weights(a, b) -> bool:
    first, second = a.get_weights(), b.get_weights()
    return len(first) == len(second) and all(map(np.array_equal, first, second))


GREY = InputSpec(height=28, width=28, channels=1)
RGB = InputSpec(height=32, width=40, channels=3)


def pixels(shape: InputSpec, n: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, shape.height, shape.width, shape.channels), dtype=np.uint8)


@pytest.mark.parametrize("profile", ["tiny", "quick", "default"])
def test_profiles_build_logit_models_for_uint8_pixels(profile: str) -> None:
    model = make_model(get_profile(profile).model, GREY, 10)
    assert model.input.dtype == "uint8"
    logits = np.asarray(model(pixels(GREY), training=False))
    assert logits.shape == (4, 10)
    assert logits.dtype == np.float32
    # Logits, not probabilities: rows do not sum to one.
    assert not np.allclose(logits.sum(axis=1), 1.0)


def test_colour_and_non_square_inputs() -> None:
    config = ModelConfig(block_filters=(8, 16), head="flatten", dense_units=0)
    model = make_model(config, RGB, 3)
    assert model.input.shape == (None, 32, 40, 3)
    assert np.asarray(model(pixels(RGB), training=False)).shape == (4, 3)


def test_same_config_and_seed_give_the_same_weights() -> None:
    config = get_profile("default").model
    first, second = make_model(config, GREY, 10, seed=3), make_model(config, GREY, 10, seed=3)
    other = make_model(config, GREY, 10, seed=4)
    assert same_weights(first, second)
    assert not same_weights(first, other)


def test_mixed_precision_keeps_float32_logits_and_weights() -> None:
    config = get_profile("default").model
    mixed = make_model(config, GREY, 10, seed=1, dtype_policy="mixed_bfloat16")
    plain = make_model(config, GREY, 10, seed=1)
    assert mixed.get_layer("block1_conv1").compute_dtype == "bfloat16"
    assert mixed.output.dtype == "float32"
    assert all(w.dtype == np.float32 for w in mixed.get_weights())
    assert same_weights(mixed, plain)


def test_augmentation_and_dropout_act_only_while_training() -> None:
    model = make_model(get_profile("default").model, GREY, 10, seed=2)
    batch = pixels(GREY, n=8)
    inference = [np.asarray(model(batch, training=False)) for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    training = np.asarray(model(batch, training=True))
    assert not np.allclose(training, inference[0])


def test_served_model_averages_each_image_with_its_mirror() -> None:
    config = get_profile("default").model
    assert config.test_time_flip
    model = make_model(config, RGB, 5, seed=6)
    served = served_model(model, config)

    def logits(net, images: np.ndarray) -> np.ndarray:
        return np.asarray(net(images, training=False))

    batch = pixels(RGB, n=3, seed=7)
    mirror = batch[:, :, ::-1].copy()
    plain, flipped = logits(model, batch), logits(model, mirror)
    assert not np.allclose(plain, flipped)  # the net alone is not mirror-symmetric
    np.testing.assert_allclose(logits(served, batch), (plain + flipped) / 2, atol=1e-5)
    np.testing.assert_allclose(logits(served, mirror), logits(served, batch), atol=1e-5)
    assert logits(served, batch[:1]).shape == (1, 5)


def test_without_test_time_flip_the_served_model_is_the_model() -> None:
    config = get_profile("quick").model
    model = make_model(config, GREY, 10)
    assert not config.test_time_flip and served_model(model, config) is model


def test_test_time_flip_needs_flip_training() -> None:
    with pytest.raises(ValidationError, match="horizontal_flip"):
        ModelConfig(horizontal_flip=False, test_time_flip=True)
