"""Pretrained backbones: uint8 pixels in, weights from a file, trained, published, classified."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from image_folders import make_image_folder

from client import Tagger
from model_store import ModelStore
from model_store.schema import InputSpec
from training.backbones import backbone_of, make_backbone, set_trainable
from training.config import ModelConfig, TrainConfig
from training.datasets import load_dataset
from training.errors import TrainingError
from training.model import make_model
from training.pipeline import train_and_publish
from training.profiles import get_profile
from training.train import fit

SMALL = InputSpec(height=32, width=32, channels=3)


def backbone_weights_file(directory: Path, input: InputSpec = SMALL) -> tuple[Path, list]:
    """A MobileNetV3-Small backbone's weights, shifted off any initialisation, saved to a file."""
    base = make_backbone("mobilenet_v3_small", input, "none")
    rng = np.random.default_rng(0)
    base.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in base.get_weights()])
    path = directory / "mobilenet_v3_small.weights.h5"
    base.save_weights(str(path))
    return path, base.get_weights()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """One backbone weights file for the module's tests (building it costs seconds)."""
    return backbone_weights_file(tmp_path_factory.mktemp("weights"))


@pytest.mark.parametrize(
    ("name", "channels"),
    # MobileNetV3-Large and EfficientNetV2-B0 take the same path as -Small (their own
    # preprocessing inside); ResNet50 gets ours. Each build costs seconds: two of them here.
    [("mobilenet_v3_small", 1), ("resnet50", 3)],
)
def test_every_backbone_takes_uint8_pixels_to_logits(name: str, channels: int) -> None:
    config = ModelConfig(backbone=name, augmentation=0.0, horizontal_flip=False)
    shape = InputSpec(height=32, width=32, channels=channels)
    model = make_model(config, shape, 4, seed=1)
    assert model.input.dtype == "uint8"
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, channels), dtype=np.uint8)
    assert model.predict_on_batch(pixels).shape == (2, 4)


def test_weights_file_is_loaded_and_bad_ones_are_refused(
    tmp_path: Path, weights_file: tuple[Path, list]
) -> None:
    path, saved = weights_file
    config = ModelConfig(backbone="mobilenet_v3_small", weights=str(path))
    model = make_model(config, SMALL, 3)
    for loaded, expected in zip(backbone_of(model).get_weights(), saved, strict=True):
        np.testing.assert_array_equal(loaded, expected)
    with pytest.raises(TrainingError, match="does not exist"):
        make_model(config.model_copy(update={"weights": str(tmp_path / "absent.h5")}), SMALL, 3)
    wrong = tmp_path / "notes.weights.h5"
    wrong.write_text("not a weights file")
    with pytest.raises(TrainingError, match="does not fit backbone mobilenet_v3_small"):
        make_model(config.model_copy(update={"weights": str(wrong)}), SMALL, 3)
    with pytest.raises(ValueError, match="weights apply to a pretrained backbone"):
        ModelConfig(weights="imagenet")


def test_phases_freeze_the_backbone_then_open_its_top() -> None:
    pretrained = ModelConfig(backbone="mobilenet_v3_small", weights="x.weights.h5")
    model = make_model(pretrained, SMALL, 3, load_weights=False)
    base = backbone_of(model)
    set_trainable(model, pretrained, "head")
    assert not base.trainable and model.get_layer("logits").trainable
    head_only = {id(w) for w in model.trainable_weights}
    assert head_only == {id(w) for w in model.get_layer("logits").trainable_weights}
    set_trainable(model, pretrained.model_copy(update={"fine_tune_fraction": 0.25}), "fine_tune")
    open_layers = [layer for layer in base.layers if layer.trainable and layer.weights]
    first_open = min(base.layers.index(layer) for layer in open_layers)
    assert first_open >= round(0.75 * len(base.layers))
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in open_layers)
    scratch = ModelConfig(backbone="mobilenet_v3_small")  # weights none: all of it trains
    fresh = make_model(scratch, SMALL, 3)
    set_trainable(fresh, scratch, "head")
    assert backbone_of(fresh).trainable


def shapes_config(root: Path, weights: str) -> TrainConfig:
    """tiny's recipe on a MobileNetV3-Small backbone, 32x32 RGB."""
    tiny = get_profile("tiny")
    model = tiny.model.model_copy(update={"backbone": "mobilenet_v3_small", "weights": weights})
    return tiny.model_copy(
        update={"data_dir": root, "image_size": (32, 32), "color_mode": "RGB", "model": model}
    )


@pytest.mark.slow
def test_mobilenet_publishes_and_classifies(
    tmp_path: Path, weights_file: tuple[Path, list]
) -> None:
    """From a weights file: the head trained on the frozen backbone, exported with the
    backbone's preprocessing, converted to ONNX, served in process."""
    root = make_image_folder(tmp_path / "shapes", per_class=12, seed=2)
    path = weights_file[0]
    store = ModelStore(tmp_path / "models")
    metadata = train_and_publish(shapes_config(root, str(path)), store, "shapes", progress=False)
    assert metadata is not None and metadata.onnx is not None  # ONNX parity held
    assert metadata.training.epochs_run == 1
    recipe = metadata.training.hyperparameters["model"]
    assert (recipe["backbone"], recipe["weights"]) == ("mobilenet_v3_small", str(path))
    assert metadata.input.channels == 3
    image = (root / "circle" / "000.png").read_bytes()
    with Tagger.from_store(store, "shapes", metadata.version) as tagger:
        (result,) = tagger.classify([image], top_k=3)
    assert result.error is None and result.version == 1
    assert {p.label for p in result.predictions} == {"circle", "square", "stripes"}


@pytest.mark.slow
def test_mobilenet_without_weights_trains_the_whole_network(tmp_path: Path) -> None:
    """Weights none: the backbone's first convolution moves too (frozen, it would not). Export,
    ONNX and serving of this architecture are the test above's."""
    config = shapes_config(make_image_folder(tmp_path / "shapes", per_class=12, seed=2), "none")
    data = load_dataset(config)

    def initial() -> list[np.ndarray]:  # as `fit` builds it: seeded, then made
        keras.utils.set_random_seed(config.seed)
        model = make_model(config.model, data.input, len(data.labels), seed=config.seed)
        return backbone_of(model).get_weights()

    before = initial()
    for same, again in zip(before, initial(), strict=True):
        np.testing.assert_array_equal(same, again)  # the comparison below means something
    result = fit(config, data, verbose=0)
    assert result.epochs_run == 1 and np.isfinite(result.history["loss"]).all()
    trained = backbone_of(result.model)
    first_conv = next(layer for layer in trained.layers if isinstance(layer, keras.layers.Conv2D))
    index = [id(w) for w in trained.weights].index(id(first_conv.kernel))
    assert not np.allclose(trained.get_weights()[index], before[index])
