"""Typed configuration: the CNN's hyperparameters and everything else a training run needs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FASHION_DIR_ENV = "TAGGER_FASHION_MNIST_DIR"
DEFAULT_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def default_fashion_dir() -> Path:
    """Where the Fashion-MNIST IDX files live: `$TAGGER_FASHION_MNIST_DIR`, else the Debian path."""
    return Path(os.environ.get(FASHION_DIR_ENV) or DEFAULT_FASHION_DIR)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Frozen):
    """The network (today's VGG-style CNN, or a pretrained backbone with a head) and its
    optimiser settings."""

    # "cnn": the blocks below, from scratch; else a keras.applications backbone under a
    # logits head (dense_units and the block settings do not apply to it).
    backbone: Literal[
        "cnn", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_v2_b0", "resnet50"
    ] = "cnn"
    # Backbones: "imagenet" (downloaded by Keras, needs network once), "none" (random) or the
    # path of a .weights.h5 file holding the backbone's weights.
    weights: str = "none"
    # Backbones, two-phase fine-tuning: after `epochs` training the head (backbone frozen when
    # its weights are pretrained), `fine_tune_epochs` more with the top `fine_tune_fraction` of
    # the backbone's layers trainable at `fine_tune_learning_rate`.
    fine_tune_epochs: int = Field(default=0, ge=0)
    fine_tune_fraction: float = Field(default=0.3, gt=0, le=1)
    fine_tune_learning_rate: float = Field(default=1e-5, gt=0)

    block_filters: tuple[int, ...] = Field(default=(32, 64, 128), min_length=1)
    convs_per_block: int = Field(default=2, ge=1, le=4)
    batch_norm: bool = True
    # Dropout after each block's pooling, and before the logits.
    dropout: float = Field(default=0.25, ge=0, lt=1)
    head_dropout: float = Field(default=0.3, ge=0, lt=1)
    head: Literal["gap", "flatten"] = "gap"
    dense_units: int = Field(default=128, ge=0)  # 0: logits straight after pooling
    # Translation and zoom range as a fraction of the image; 0 turns augmentation off.
    augmentation: float = Field(default=0.1, ge=0, le=0.5)
    horizontal_flip: bool = True
    # Served network averages the logits of the image and its mirror (needs horizontal_flip):
    # about +0.35 points on Fashion-MNIST for twice the inference compute.
    test_time_flip: bool = False
    learning_rate: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: float = Field(default=0.0, ge=0)

    @field_validator("block_filters")
    @classmethod
    def _positive_filters(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(width < 1 for width in value):
            raise ValueError(f"block_filters must be positive, got {value}")
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("weights must be imagenet, none or a weights file's path")
        return value

    @model_validator(mode="after")
    def _weights_need_a_backbone(self) -> ModelConfig:
        if self.backbone == "cnn" and self.weights != "none":
            raise ValueError("weights apply to a pretrained backbone; the cnn starts from scratch")
        return self

    @model_validator(mode="after")
    def _mirror_needs_flip_training(self) -> ModelConfig:
        if self.test_time_flip and not self.horizontal_flip:
            raise ValueError("test_time_flip needs horizontal_flip: the net never saw mirrors")
        return self


# Where a run's data is, how much of it, and how the run is spread: not part of the recipe.
RUN_FIELDS = frozenset(
    {"data_dir", "fashion_dir", "train_limit", "test_limit", "cache_dir", "distribute"}
)


class TrainConfig(_Frozen):
    """One training run: profile recipe plus where the data is and how much of it to use."""

    profile: str = "default"
    model: ModelConfig = Field(default_factory=ModelConfig)
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=128, ge=1)
    seed: int = 1337
    # None: Fashion-MNIST from `fashion_dir`; else a folder with one sub-folder per class.
    data_dir: Path | None = None
    fashion_dir: Path = Field(default_factory=default_fashion_dir)
    # Image folders only: the input the images are preprocessed to.
    image_size: tuple[int, int] = (28, 28)  # height, width
    color_mode: Literal["L", "RGB"] = "L"
    validation_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.15, gt=0, lt=0.5)  # image folders only
    # Subset sizes (tests, smoke runs): at most this many training (+validation) / test images.
    train_limit: int | None = Field(default=None, ge=10)
    test_limit: int | None = Field(default=None, ge=1)
    patience: int = Field(default=5, ge=1)  # early stopping on validation accuracy
    mixed_precision: bool = False  # mixed_bfloat16 compute; logits stay float32
    # Image folders are streamed: decoded pixels pass through a shuffle buffer of this many
    # images, and are cached on disk in `cache_dir` (reused by later epochs and runs) if set.
    shuffle_buffer: int = Field(default=1000, ge=1)
    cache_dir: Path | None = None
    # "balanced": each class's loss weighted by n / (classes * n_class), for skewed classes.
    class_weight: Literal["none", "balanced"] = "none"
    # auto: MirroredStrategy when TensorFlow sees several GPUs, else none; multi-worker reads
    # TF_CONFIG (MultiWorkerMirroredStrategy).
    distribute: Literal["auto", "none", "mirrored", "multi-worker"] = "auto"

    @field_validator("image_size")
    @classmethod
    def _sane_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not all(8 <= side <= 1024 for side in value):
            raise ValueError(f"image_size sides must be within 8..1024, got {value}")
        return value

    def recipe(self) -> dict[str, object]:
        """The hyperparameters (JSON-ready) that define the model, without data locations."""
        return self.model_dump(mode="json", exclude=set(RUN_FIELDS))
