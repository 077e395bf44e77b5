"""Settings for the server processes, what runs the model and with how many CPU threads."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field, field_validator

from app.cpus import usable_cpus

Runtime = Literal["auto", "onnxruntime", "tensorflow"]
RUNTIME_SETTINGS: tuple[str, ...] = get_args(Runtime)


class RuntimeSettings(BaseModel):
    """The server processes, the model runtime and its thread counts."""

    workers: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description=(
            "Server processes on the one port, each with its own event loop, batcher and "
            "loaded models, under a supervisor that restarts a worker that dies. Unset: the "
            "CPU cores this process may use (affinity and cgroup quota). 1: one process, no "
            "supervisor. Queue, in-flight and body limits apply per worker."
        ),
    )

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
            "fewer than the CPU cores of one worker (the cores this process may use divided "
            "by TAGGER_WORKERS; at least 1), leaving a core to the event loop that parses "
            "requests and decodes images; 0 lets the runtime choose (all cores)."
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
    def worker_count(self) -> int:
        """TAGGER_WORKERS, or one per usable core."""
        return self.workers if self.workers is not None else usable_cpus()

    @property
    def cpus_per_worker(self) -> int:
        return max(1, usable_cpus() // self.worker_count)

    @property
    def tf_intra_op_threads(self) -> int:
        """TAGGER_INTRA_OP_THREADS, or a worker's cores less the one its event loop keeps
        (both runtimes use it)."""
        if self.intra_op_threads is not None:
            return self.intra_op_threads
        return max(1, self.cpus_per_worker - 1)

    @property
    def tf_inter_op_threads(self) -> int:
        return 1 if self.inter_op_threads is None else self.inter_op_threads
