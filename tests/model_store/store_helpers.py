"""Builders shared by the model_store tests: metadata, fake and tiny real SavedModels, tiny
ONNX models."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from multiprocessing.synchronize import Barrier
from pathlib import Path

from model_store import (
    ClassMetrics,
    DatasetInfo,
    InputSpec,
    LibraryVersions,
    Metrics,
    ModelMetadata,
    ModelStore,
    OnnxExport,
    PreprocessingSpec,
    TestMetrics,
    TrainingInfo,
)
from model_store.signature import INPUT_NAME, ONNX_FILE, OUTPUT_NAME, SIGNATURE_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
LABELS = ["shirt", "trouser", "sneaker"]
VARIABLES_FILE = "variables/variables.data-00000-of-00001"


def make_metadata(
    name: str = "fashion", labels: list[str] | None = None, accuracy: float = 0.8123, seed: int = 0
) -> ModelMetadata:
    labels = labels or LABELS
    per_class = {
        label: ClassMetrics(precision=0.8, recall=0.7, f1=0.75, support=10) for label in labels
    }
    test = TestMetrics(
        accuracy=accuracy,
        macro_precision=0.8,
        macro_recall=0.7,
        macro_f1=0.75,
        ece=0.03,
        temperature=1.5,
        per_class=per_class,
    )
    return ModelMetadata(
        name=name,
        labels=labels,
        input=InputSpec(height=28, width=28, channels=1),
        preprocessing=PreprocessingSpec(color_mode="L", invert="auto", trim=True),
        metrics=Metrics(test=test, validation={"accuracy": 0.8}),
        training=TrainingInfo(
            profile="test", hyperparameters={"filters": 8}, epochs_run=1, seconds=1.5, seed=seed
        ),
        dataset=DatasetInfo(name="fashion-mnist", fingerprint="ab" * 32, splits={"train": 300}),
        versions=LibraryVersions(tensorflow="2.21.0", keras="3", python="3.11"),
    )


def write_fake_savedmodel(directory: Path, payload: bytes = b"weights") -> Path:
    """Files laid out like a SavedModel (not loadable): enough for checksum-level tests."""
    (directory / "variables").mkdir(parents=True, exist_ok=True)
    (directory / "saved_model.pb").write_bytes(b"graph:" + payload)
    (directory / VARIABLES_FILE).write_bytes(payload * 100)
    (directory / "variables/variables.index").write_bytes(b"index")
    (directory / "evaluation").mkdir(exist_ok=True)
    (directory / "evaluation/report.json").write_text('{"accuracy": 0.8}')
    return directory


def publish_fake(store: ModelStore, name: str = "fashion", **kwargs: object) -> int:
    with store.staging(name) as staged:
        write_fake_savedmodel(staged)
        return store.publish(name, staged, make_metadata(name, **kwargs)).version  # type: ignore[arg-type]


def write_tiny_onnx(path: Path, spec: InputSpec, classes: int) -> Path:
    """A real ONNX model with the serving contract: uint8 `pixels` [N, H, W, C] -> softmax over
    `classes`, float32 `probabilities` [N, classes] (a fixed linear layer, no training)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    features = spec.height * spec.width * spec.channels
    weights = np.random.default_rng(0).normal(0, 0.01, (features, classes)).astype(np.float32)
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["as_float", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [OUTPUT_NAME], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", *spec_dims(spec)])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", classes])],
        initializer=[
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(np.array([-1, features], dtype=np.int64), "flat_shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def spec_dims(spec: InputSpec) -> list[int]:
    return [spec.height, spec.width, spec.channels]


ONNX_RECORD = OnnxExport(
    opset=17, images=20, max_abs_difference=5e-7, top1_agreement=1.0, tolerance=1e-4,
    seconds=0.4, converter_versions={"tf2onnx": "1.17.0"},
)  # fmt: skip


def publish_fake_onnx(
    store: ModelStore,
    name: str = "fashion",
    labels: list[str] | None = None,
    spec: InputSpec | None = None,
) -> int:
    """A fake SavedModel beside a real tiny model.onnx, published with its parity record."""
    metadata = make_metadata(name, labels=labels).model_copy(update={"onnx": ONNX_RECORD})
    if spec is not None:
        metadata = metadata.model_copy(update={"input": spec})
    with store.staging(name) as staged:
        write_fake_savedmodel(staged)
        write_tiny_onnx(staged / ONNX_FILE, metadata.input, len(metadata.labels))
        return store.publish(name, staged, metadata).version


def build_tiny_savedmodel(directory: Path, classes: int = 3) -> Path:
    """A real SavedModel with the serving contract of `model_store.signature`."""
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = tf.Variable(tf.random.stateless_normal([784, classes], seed=[1, 2]) * 0.01)

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.uint8, name=INPUT_NAME)])
        def serve(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
            flat = tf.reshape(tf.cast(pixels, tf.float32) / 255.0, [-1, 784])
            return {OUTPUT_NAME: tf.nn.softmax(flat @ self.dense)}

    module = Tiny()
    tf.saved_model.save(module, str(directory), signatures={SIGNATURE_NAME: module.serve})
    return directory


def tree_snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` with a digest of its contents ("dir" for directories)."""
    if not root.exists():
        return {}
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    snapshot = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        snapshot[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return snapshot


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m model_store ARGS` in a fresh process, as a user would run it."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
    )
    return subprocess.run(
        [sys.executable, "-m", "model_store", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


def publish_worker(root: str, seed: int, barrier: Barrier) -> None:
    """Runs in a child process: stage, wait for every sibling, then publish at once."""
    store = ModelStore(root)
    with store.staging("fashion") as staged:
        write_fake_savedmodel(staged, payload=f"worker-{seed}".encode())
        barrier.wait(timeout=60)
        store.publish("fashion", staged, make_metadata(seed=seed))


STAGE_AND_WAIT = """
import sys, time
from model_store import ModelStore
with ModelStore(sys.argv[1]).staging("fashion") as staged:
    (staged / "saved_model.pb").write_bytes(b"half written")
    print(staged, flush=True)
    time.sleep(600)
"""


def start_staging_writer(root: Path) -> tuple[subprocess.Popen[str], Path]:
    """A child process that stages a version and then hangs (as a long training would)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", STAGE_AND_WAIT, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    staged = Path(child.stdout.readline().strip())
    assert staged.is_dir(), staged
    return child, staged
