"""`training.onnx_graph.fold_batch_reshapes`: Flatten's run-time shape becomes a constant, and
every output stays exactly as it was; a Reshape that changes the batch is left alone."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from training.onnx_graph import fold_batch_reshapes


def _flatten_model(batch_factor: int = 1) -> onnx.ModelProto:
    """x [N, 2, 3, 4] -> Transpose -> Reshape to [N * batch_factor, 24 / batch_factor], the
    target computed from Shape as tf2onnx writes Keras's Flatten (Shape, Cast, Slice, Concat,
    Cast), with a Mul for the batch when `batch_factor` is not 1."""
    rest = 24 // batch_factor
    rows = "batch" if batch_factor == 1 else "rows"
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Shape", ["t"], ["shape"]),
        helper.make_node("Cast", ["shape"], ["shape_32"], to=TensorProto.INT32),
        helper.make_node("Slice", ["shape_32", "zero", "one"], ["batch"]),
        *([helper.make_node("Mul", ["batch", "factor"], ["rows"])] if batch_factor != 1 else []),
        helper.make_node("Concat", [rows, "rest"], ["target_32"], axis=0),
        helper.make_node("Cast", ["target_32"], ["target"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["t", "target"], ["y"]),
    ]
    constants = [
        numpy_helper.from_array(np.array([0], np.int32), "zero"),
        numpy_helper.from_array(np.array([1], np.int32), "one"),
        numpy_helper.from_array(np.array([batch_factor], np.int32), "factor"),
        numpy_helper.from_array(np.array([rest], np.int32), "rest"),
    ]
    graph = helper.make_graph(
        nodes,
        "flatten",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
        constants,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_a_flatten_gets_a_constant_shape_and_the_same_outputs() -> None:
    model = _flatten_model()
    before = model.SerializeToString()
    assert fold_batch_reshapes(model) == 1
    onnx.checker.check_model(model)
    assert [node.op_type for node in model.graph.node] == ["Transpose", "Reshape"]
    assert {i.name for i in model.graph.initializer} == {"y__static_shape"}
    original = onnx.load_from_string(before)
    for batch in (1, 3, 64):
        x = np.random.default_rng(batch).random((batch, 2, 3, 4), dtype=np.float32)
        assert np.array_equal(_run(model, x), _run(original, x))


def test_a_reshape_that_changes_the_batch_is_left_alone() -> None:
    model = _flatten_model(batch_factor=2)
    before = model.SerializeToString()
    assert fold_batch_reshapes(model) == 0
    assert model.SerializeToString() == before
