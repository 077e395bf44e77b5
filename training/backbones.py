"""Pretrained backbones from `keras.applications` under a small head, uint8 pixels in.

The backbone's own input preprocessing is part of the model (MobileNetV3 and EfficientNetV2
carry theirs; ResNet50's caffe-style channel flip and mean subtraction is added), so the
exported graph takes raw pixels like every other version. Greyscale inputs are repeated to
three channels. `weights` is "imagenet" (Keras downloads them once into ~/.keras/models; needs
network access), "none" (random initialisation) or a `.weights.h5` file of the backbone alone.
The backbone always runs in inference mode: its batch-norm statistics stay as loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
from keras import layers

from model_store.schema import InputSpec
from model_store.signature import INPUT_NAME
from training.config import ModelConfig
from training.errors import TrainingError

LOGITS_NAME = "logits"
# Caffe-style ImageNet means (BGR) that keras.applications.resnet50.preprocess_input subtracts.
_RESNET_MEAN_BGR = (103.939, 116.779, 123.68)


def _applications() -> dict[str, tuple[Callable[..., keras.Model], dict[str, Any]]]:
    apps = keras.applications
    return {
        "mobilenet_v3_small": (apps.MobileNetV3Small, {"include_preprocessing": True}),
        "mobilenet_v3_large": (apps.MobileNetV3Large, {"include_preprocessing": True}),
        "efficientnet_v2_b0": (apps.EfficientNetV2B0, {"include_preprocessing": True}),
        "resnet50": (apps.ResNet50, {}),
    }


def make_backbone(
    name: str, input: InputSpec, weights: str, *, load_weights: bool = True
) -> keras.Model:
    """The application `name` without its classifier, global-average pooled, float inputs in
    0..255 with three channels. `load_weights=False` builds it with random weights."""
    try:
        application, options = _applications()[name]
    except KeyError:
        raise TrainingError(f"unknown backbone {name!r}") from None
    if min(input.height, input.width) < 32:
        raise TrainingError(f"backbone {name} needs images of at least 32x32 (--image-size)")
    imagenet = load_weights and weights == "imagenet"
    try:
        base = application(
            include_top=False,
            weights="imagenet" if imagenet else None,
            input_shape=(input.height, input.width, 3),
            pooling="avg",
            **options,
        )
    except (OSError, ValueError) as exc:  # no network, or Keras refusing the input shape
        raise TrainingError(f"cannot build backbone {name} with {weights} weights: {exc}") from exc
    if load_weights and weights not in ("imagenet", "none"):
        _load_weights_file(base, Path(weights), name)
    return base


def _load_weights_file(base: keras.Model, path: Path, name: str) -> None:
    if not path.is_file():
        raise TrainingError(f"weights file {path} does not exist")
    try:
        base.load_weights(str(path))
    except (OSError, ValueError, KeyError) as exc:
        raise TrainingError(
            f"weights file {path} does not fit backbone {name} at this input size: "
            f"{' '.join(str(exc).split())[:200]}"
        ) from exc


def make_backbone_model(
    config: ModelConfig,
    input: InputSpec,
    num_classes: int,
    augment: Callable[[keras.KerasTensor], keras.KerasTensor],
    *,
    load_weights: bool = True,
) -> keras.Model:
    """uint8 pixels -> augmentation -> the backbone's preprocessing and body -> dropout ->
    logits (float32)."""
    inputs = keras.Input(
        (input.height, input.width, input.channels), dtype="uint8", name=INPUT_NAME
    )
    x = layers.Rescaling(1.0, name="to_float")(inputs)  # 0..255 as float32
    x = augment(x)
    if input.channels == 1:
        x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    if config.backbone == "resnet50":
        x = layers.Lambda(lambda t: keras.ops.flip(t, axis=-1), name="rgb_to_bgr")(x)
        x = layers.Normalization(mean=_RESNET_MEAN_BGR, variance=(1.0, 1.0, 1.0), name="caffe")(x)
    base = make_backbone(config.backbone, input, config.weights, load_weights=load_weights)
    x = base(x, training=False)
    if config.head_dropout:
        x = layers.Dropout(config.head_dropout, name="head_drop")(x)
    logits = layers.Dense(num_classes, dtype="float32", name=LOGITS_NAME)(x)
    return keras.Model(inputs, logits, name=f"{config.backbone}_tagger")


def backbone_of(model: keras.Model) -> keras.Model:
    """The backbone inside a model from `make_backbone_model` (its one nested model)."""
    (base,) = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return base


def set_trainable(model: keras.Model, config: ModelConfig, phase: str) -> None:
    """ "head": the backbone frozen (pretrained weights) or trainable (from scratch); "fine_tune":
    the top `fine_tune_fraction` of its layers trainable, batch norm always frozen."""
    base = backbone_of(model)
    if phase == "head":
        base.trainable = config.weights == "none"
        return
    base.trainable = True
    inner = base.layers
    first = round(len(inner) * (1.0 - config.fine_tune_fraction))
    for position, layer in enumerate(inner):
        frozen = position < first or isinstance(layer, layers.BatchNormalization)
        layer.trainable = not frozen
