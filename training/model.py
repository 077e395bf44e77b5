"""A pure `make_model`: config in, uncompiled Keras CNN out (uint8 pixels -> logits).

Normalisation and augmentation live inside the model, so the exported graph takes raw
pixels; the augmentation layers are active only while training. Every layer gets a seed
derived from `seed`, so the same config and seed always give the same initial weights.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
from keras import layers

from model_store.schema import InputSpec
from model_store.signature import INPUT_NAME
from training.config import ModelConfig

LOGITS_NAME = "logits"


def make_model(
    config: ModelConfig,
    input: InputSpec,
    num_classes: int,
    *,
    seed: int = 0,
    dtype_policy: str | None = None,
    load_weights: bool = True,
) -> keras.Model:
    """VGG-style blocks (Conv-BN-ReLU x n, MaxPool, Dropout), then GAP or Flatten and Dense;
    or, with `config.backbone`, a pretrained network under a logits head
    (`training.backbones`; `load_weights=False` skips loading its weights).

    `dtype_policy` (e.g. "mixed_bfloat16") applies to the convolutional body and head; the
    rescaling, augmentation and the logits stay float32.
    """
    seeds = iter(range(seed * 1000, seed * 1000 + 1000))
    policy = dtype_policy or "float32"
    if config.backbone != "cnn":
        from training.backbones import make_backbone_model

        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            return make_backbone_model(
                config,
                input,
                num_classes,
                lambda x: _augment(x, config, seeds),
                load_weights=load_weights,
            )
        finally:
            keras.config.set_dtype_policy(previous)

    def kernel() -> keras.initializers.Initializer:
        return keras.initializers.HeNormal(seed=next(seeds))

    shape = (input.height, input.width, input.channels)
    inputs = keras.Input(shape, dtype="uint8", name=INPUT_NAME)
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = _augment(x, config, seeds)
    for block, filters in enumerate(config.block_filters, start=1):
        for conv in range(1, config.convs_per_block + 1):
            name = f"block{block}_conv{conv}"
            x = layers.Conv2D(
                filters,
                3,
                padding="same",
                use_bias=not config.batch_norm,
                kernel_initializer=kernel(),
                dtype=policy,
                name=name,
            )(x)
            if config.batch_norm:
                x = layers.BatchNormalization(dtype=policy, name=f"{name}_bn")(x)
            x = layers.Activation("relu", dtype=policy, name=f"{name}_relu")(x)
        if min(x.shape[1], x.shape[2]) >= 2:
            x = layers.MaxPooling2D(dtype=policy, name=f"block{block}_pool")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, seed=next(seeds), name=f"block{block}_drop")(x)
    if config.head == "gap":
        x = layers.GlobalAveragePooling2D(dtype=policy, name="pool")(x)
    else:
        x = layers.Flatten(dtype=policy, name="flatten")(x)
    if config.dense_units:
        x = layers.Dense(
            config.dense_units,
            activation="relu",
            kernel_initializer=kernel(),
            dtype=policy,
            name="dense",
        )(x)
    if config.head_dropout:
        x = layers.Dropout(config.head_dropout, seed=next(seeds), name="head_drop")(x)
    logits = layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
        dtype="float32",
        name=LOGITS_NAME,
    )(x)
    return keras.Model(inputs, logits, name="cnn_tagger")


def _augment(x: keras.KerasTensor, config: ModelConfig, seeds: Iterator[int]) -> keras.KerasTensor:
    """Random translation, zoom and (optionally) horizontal flip, scaled by `augmentation`."""
    strength = config.augmentation
    if strength > 0:
        x = layers.RandomTranslation(
            strength, strength, fill_mode="constant", seed=next(seeds), name="aug_translate"
        )(x)
        x = layers.RandomZoom(
            (-strength, strength), fill_mode="constant", seed=next(seeds), name="aug_zoom"
        )(x)
    if config.horizontal_flip:
        x = layers.RandomFlip("horizontal", seed=next(seeds), name="aug_flip")(x)
    return x


def served_model(model: keras.Model, config: ModelConfig) -> keras.Model:
    """The network as exported and evaluated: `model` itself, or with `test_time_flip` a
    wrapper averaging the logits of each image and its horizontal mirror, computed in one
    pass over the batch and its mirror (twice the compute: 421 vs 875 images/s at batch 1)."""
    if not config.test_time_flip:
        return model
    pixels = keras.Input(model.input.shape[1:], dtype=model.input.dtype, name=INPUT_NAME)
    both = keras.ops.concatenate([pixels, keras.ops.flip(pixels, axis=2)], axis=0)
    plain, mirrored = keras.ops.split(model(both), 2, axis=0)
    logits = layers.Average(dtype="float32", name=LOGITS_NAME)([plain, mirrored])
    return keras.Model(pixels, logits, name=f"{model.name}_mirror_averaged")
