"""Settings for what runs the model and with how many CPU threads."""

from __future__ import annotations

import os
from typing import Literal, get_args

from pydantic import BaseModel, Field, field_validator

Runtime = Literal["auto", "onnxruntime", "tensorflow"]
RUNTIME_SETTINGS: tuple[str, ...] = get_args(Runtime)


class RuntimeSettings(BaseModel):
    """The model runtime and its thread counts."""

    runtime: Runtime = Field(
        default="auto",
        description=(
            "What runs each loaded version: `onnxruntime` its model.onnx, `tensorflow` its "
            "SavedModel; `auto` ONNX Runtime for versions published with model.onnx (falling "
            "back to TensorFlow, with a warning and a counted reload failure, if it is damaged) "
            "and TensorFlow for older ones. With `onnxruntime`, a version without a sound "
            "model.onnx fails to load."
        ),
    )
    # Model CPU threads, for both runtimes; TensorFlow takes them only on CPU and before it
    # first runs.
    intra_op_threads: int | None = Field(
        default=None,
        ge=0,
        le=1024,
        description=(
            "Threads one model op may use (ONNX Runtime counts the calling thread). Unset: one "
            "fewer than the CPU cores this process may run on (at least 1), leaving a core to "
            "the event loop that parses requests and decodes images; 0 lets the runtime choose "
            "(all cores)."
        ),
    )
    inter_op_threads: int | None = Field(
        default=None,
        ge=0,
        le=1024,
        description=(
            "TensorFlow model ops run side by side. Unset: 1 (the batcher makes one model call "
            "at a time and the CNN is a chain of ops); 0 lets TensorFlow choose. ONNX Runtime "
            "always runs the ops one after another."
        ),
    )

    @field_validator("runtime", mode="before")
    @classmethod
    def _runtime_known(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in RUNTIME_SETTINGS:
                raise ValueError(
                    f"TAGGER_RUNTIME {value!r} must be one of {', '.join(RUNTIME_SETTINGS)}"
                )
        return value

    @property
    def tf_intra_op_threads(self) -> int:
        """TAGGER_INTRA_OP_THREADS, or the cores less the one the event loop keeps (both
        runtimes use it)."""
        if self.intra_op_threads is not None:
            return self.intra_op_threads
        return max(1, _usable_cpus() - 1)

    @property
    def tf_inter_op_threads(self) -> int:
        return 1 if self.inter_op_threads is None else self.inter_op_threads


def _usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
