"""`--distribute`: which tf.distribute strategy trains, how many replicas, who publishes.

`auto` is MirroredStrategy when TensorFlow sees more than one GPU, else no strategy;
`multi-worker` is MultiWorkerMirroredStrategy over the cluster in `TF_CONFIG`, where only the
chief evaluates, exports and publishes. A collective that waits on a dead or stuck peer fails
after `timeout_s` instead of hanging (and TensorFlow's peer health check usually fails it
sooner), so a lost worker fails the whole run before anything is published.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from training.errors import TrainingError

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Distribution:
    """A strategy (None: TensorFlow's default, one device) and this process's place in it."""

    name: str  # "none", "mirrored" or "multi-worker"
    strategy: tf.distribute.Strategy | None = None
    replicas: int = 1
    workers: int = 1
    worker_index: int = 0
    is_chief: bool = True

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        if self.strategy is None:
            yield
        else:
            with self.strategy.scope():
                yield

    @property
    def multi_worker(self) -> bool:
        return self.name == "multi-worker"

    def describe(self) -> str:
        where = f", worker {self.worker_index} of {self.workers}" if self.multi_worker else ""
        return f"{self.name} ({self.replicas} replica{'s' if self.replicas != 1 else ''}{where})"


def make_distribution(kind: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Distribution:
    """The strategy `kind` names. Create it before TensorFlow runs anything else: collective
    ops must be configured at program start."""
    if kind == "multi-worker":
        return _multi_worker(timeout_s)
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if kind == "mirrored" or (kind == "auto" and len(gpus) > 1):
        strategy = tf.distribute.MirroredStrategy()
        return Distribution("mirrored", strategy, strategy.num_replicas_in_sync)
    if kind not in ("auto", "none"):
        raise TrainingError(
            f"unknown --distribute {kind!r}; use auto, none, mirrored or multi-worker"
        )
    return Distribution("none")


def read_tf_config() -> dict[str, Any]:
    """`TF_CONFIG` as a dict, checked enough to give a clear error before TensorFlow starts."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise TrainingError(
            "--distribute multi-worker needs TF_CONFIG (the cluster's worker addresses and this "
            'process\'s task), e.g. {"cluster": {"worker": ["host0:2222", "host1:2222"]}, '
            '"task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        workers = list(cluster.get("chief", [])) + list(cluster["worker"])
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"TF_CONFIG is not a usable cluster description: {exc}") from exc
    if kind not in ("chief", "worker") or not 0 <= index < len(cluster.get(kind, [])):
        raise TrainingError(f"TF_CONFIG's task {task} is not one of its cluster's tasks")
    if not workers:
        raise TrainingError("TF_CONFIG's cluster lists no workers")
    return config


def is_chief(config: dict[str, Any]) -> bool:
    """The chief task, or worker 0 when the cluster names no chief (TensorFlow's rule)."""
    kind, index = config["task"]["type"], int(config["task"]["index"])
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in config["cluster"])


def _multi_worker(timeout_s: float) -> Distribution:
    config = read_tf_config()
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_s)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    cluster = config["cluster"]
    workers = len(cluster.get("chief", [])) + len(cluster["worker"])
    task = config["task"]
    index = int(task["index"]) + (1 if task["type"] == "worker" and "chief" in cluster else 0)
    return Distribution(
        "multi-worker",
        strategy,
        strategy.num_replicas_in_sync,
        workers=workers,
        worker_index=index,
        is_chief=is_chief(config),
    )


def prepare_multi_worker_fit(
    model: keras.Model, strategy: tf.distribute.Strategy, batch: Any
) -> None:
    """Work around Keras 3's fit under MultiWorkerMirroredStrategy (seen with Keras 3.15):
    it reduces the first distributed batch and each step's scalar logs with collective
    reductions that fail (`PerReplica` to tensor; "reduction dimension 0"). Build the model's
    training state from a local `batch` instead, and reduce the logs locally: they are the
    metrics' values, whose variables are already aggregated across workers."""
    import keras
    from keras.src.backend.tensorflow import trainer

    if not hasattr(trainer, "_collective_all_reduce_multi_worker") or not hasattr(
        model, "_symbolic_build"
    ):
        raise TrainingError(
            f"--distribute multi-worker relies on Keras internals that Keras {keras.__version__} "
            "does not have (tested with 3.15)"
        )
    trainer._collective_all_reduce_multi_worker = lambda strategy: False
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
