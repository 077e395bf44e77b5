"""The metadata.json schema: what every published model version says about itself."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model_store.signature import OUTPUT_NAME, SIGNATURE_NAME

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
METADATA_FILE = "metadata.json"
EVALUATION_DIR = "evaluation"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """The pixels the serving signature takes: uint8 `[batch, height, width, channels]`."""

    height: int = Field(gt=0, le=4096)
    width: int = Field(gt=0, le=4096)
    channels: Literal[1, 3]
    dtype: Literal["uint8"] = "uint8"


class PreprocessingSpec(_Strict):
    """How any uploaded image becomes the model's input pixels.

    Implemented once, in `model_store.preprocessing`, and used by training (image folders),
    evaluation and serving alike.
    """

    color_mode: Literal["L", "RGB"]
    # Keep the aspect ratio and pad to the input shape ("pad"), or distort it ("stretch").
    fit: Literal["pad", "stretch"] = "pad"
    # Crop to the object before fitting, for images larger than the input (product photos).
    trim: bool = False
    # Fashion-MNIST shows light objects on black: "auto" inverts images whose border is light.
    invert: Literal["never", "always", "auto"] = "never"
    # Mean border brightness (0-255) above which "auto" inverts.
    invert_threshold: float = Field(default=128.0, ge=0, le=255)
    # Colour transparent pixels are composited onto before anything else.
    alpha_background: int = Field(default=255, ge=0, le=255)
    resample: Literal["nearest", "box", "bilinear", "bicubic", "lanczos"] = "lanczos"


class ClassMetrics(_Strict):
    precision: float
    recall: float
    f1: float
    support: int


class TestMetrics(_Strict):
    __test__ = False  # not a pytest class

    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    ece: float
    ece_before_calibration: float | None = None
    temperature: float | None = None
    nll: float | None = None
    per_class: dict[str, ClassMetrics]


class Metrics(_Strict):
    test: TestMetrics
    validation: dict[str, float] = Field(default_factory=dict)


class TrainingInfo(_Strict):
    profile: str
    hyperparameters: dict[str, object]
    epochs_run: int = Field(ge=0)
    seconds: float = Field(ge=0)
    seed: int | None = None
    # How it ran (None in versions trained before these were recorded): the tf.distribute
    # strategy ("none", "mirrored", "multi-worker"), replicas over all workers, the batch one
    # step took over all replicas, and the per-class loss weights (None: unweighted).
    strategy: str | None = None
    replicas: int | None = Field(default=None, ge=1)
    workers: int | None = Field(default=None, ge=1)
    global_batch: int | None = Field(default=None, ge=1)
    class_weights: dict[str, float] | None = None


class DatasetInfo(_Strict):
    name: str
    fingerprint: str
    splits: dict[str, int]
    source: str | None = None


class LibraryVersions(_Strict):
    tensorflow: str
    keras: str
    python: str


class OnnxExport(_Strict):
    """`model.onnx`, the serving signature converted to ONNX, and how closely it agreed with
    the SavedModel on the evaluation set when the version was published."""

    opset: int = Field(ge=1)
    images: int = Field(ge=0)  # evaluation images both artifacts were run on
    max_abs_difference: float = Field(ge=0)
    top1_agreement: float = Field(ge=0, le=1)  # fraction of those images with the same top-1
    tolerance: float = Field(gt=0)  # the largest max_abs_difference publishing accepted
    seconds: float = Field(ge=0)  # conversion time
    # Versions of the converter and of the runtime that proved it: tf2onnx, onnx, onnxruntime.
    converter_versions: dict[str, str]


class ModelMetadata(_Strict):
    """Everything in `<root>/<name>/<version>/metadata.json`."""

    schema_version: Literal[1] = 1
    name: str
    version: int = Field(default=0, ge=0)  # 0 until model_store publishes it
    labels: list[str] = Field(min_length=2)
    input: InputSpec
    preprocessing: PreprocessingSpec
    signature: str = SIGNATURE_NAME
    output: str = OUTPUT_NAME
    metrics: Metrics
    training: TrainingInfo
    dataset: DatasetInfo
    versions: LibraryVersions
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # sha256 of every servable file, by path relative to the version directory.
    files: dict[str, str] = Field(default_factory=dict)
    # None for versions published without model.onnx (all those from before ONNX export).
    onnx: OnnxExport | None = None

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"model name {value!r} must match {NAME_PATTERN.pattern}")
        return value

    @field_validator("labels")
    @classmethod
    def _labels_unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("labels must be unique")
        return value

    @model_validator(mode="after")
    def _spec_matches_input(self) -> ModelMetadata:
        expected = 1 if self.preprocessing.color_mode == "L" else 3
        if self.input.channels != expected:
            raise ValueError(
                f"preprocessing.color_mode {self.preprocessing.color_mode} needs "
                f"{expected} input channels, not {self.input.channels}"
            )
        return self

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"
