"""`training.onnx_scales.fold_scales`: a Mul by a constant next to a linear layer goes into its
weights with the outputs unchanged but for rounding; anything that would change them is left."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from training.onnx_scales import fold_scales

RNG = np.random.default_rng(7)


def _model(
    nodes: list[onnx.NodeProto],
    constants: dict[str, np.ndarray],
    x: tuple[int, list[int | str]],
    outputs: tuple[str, ...] = ("y",),
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "scales",
        [helper.make_tensor_value_info("x", x[0], x[1])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None]) for name in outputs],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _pixels_into_conv(offset: float = 0.0, pads: int = 1, shared: bool = False) -> onnx.ModelProto:
    """uint8 [N, 5, 5, 1] -> Cast -> Mul(1/255) -> Add(offset) -> Transpose -> Conv (zero
    padding `pads`) -> y, as tf2onnx writes the rescaling; with `shared`, a second Conv reads
    the same weights on the unscaled pixels."""
    nodes = [
        helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["f", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offset"], ["shifted"]),
        helper.make_node("Transpose", ["shifted"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w", "b"], ["y"], pads=[pads] * 4),
    ]
    outputs: tuple[str, ...] = ("y",)
    if shared:  # a second Conv on the unscaled pixels, with the same weights
        nodes.append(helper.make_node("Transpose", ["f"], ["f_nchw"], perm=[0, 3, 1, 2]))
        nodes.append(helper.make_node("Conv", ["f_nchw", "w"], ["z"]))
        outputs = ("y", "z")
    constants = {
        "scale": np.array(1 / 255, np.float32),
        "offset": np.array(offset, np.float32),
        "w": RNG.normal(size=(3, 1, 3, 3)).astype(np.float32),
        "b": RNG.normal(size=3).astype(np.float32),
    }
    return _model(nodes, constants, (TensorProto.UINT8, ["N", 5, 5, 1]), outputs)


DENSE = {
    "matmul-add": [
        helper.make_node("MatMul", ["x", "w"], ["product"]),
        helper.make_node("Add", ["product", "b"], ["logits"]),
    ],
    "gemm": [helper.make_node("Gemm", ["x", "w", "b"], ["logits"])],
    "matmul": [helper.make_node("MatMul", ["x", "w"], ["logits"])],  # a layer without bias
}


def _logits_into_softmax(
    dense: str = "matmul-add", factor: np.ndarray | None = None
) -> onnx.ModelProto:
    """float [N, 6] -> the `DENSE` layer -> Mul(1/T) -> Softmax -> y."""
    nodes = [
        *DENSE[dense],
        helper.make_node("Mul", ["inverse_t", "logits"], ["tempered"]),  # constant first
        helper.make_node("Softmax", ["tempered"], ["y"], axis=-1),
    ]
    constants = {
        "w": RNG.normal(size=(6, 4)).astype(np.float32),
        "b": RNG.normal(size=4).astype(np.float32),
        "inverse_t": np.array(0.7, np.float32) if factor is None else factor,
    }
    return _model(nodes, constants, (TensorProto.FLOAT, ["N", 6]))


def _outputs(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def _assert_same_outputs(original: onnx.ModelProto, folded: onnx.ModelProto, x: np.ndarray) -> None:
    for before, after in zip(_outputs(original, x), _outputs(folded, x), strict=True):
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)


def _pixels(batch: int = 4) -> np.ndarray:
    return RNG.integers(0, 256, size=(batch, 5, 5, 1), dtype=np.uint8)


def test_the_pixel_scale_and_a_zero_offset_go_into_the_first_convolution() -> None:
    model = _pixels_into_conv()
    original = onnx.load_from_string(model.SerializeToString())
    assert fold_scales(model) == 1
    onnx.checker.check_model(model)
    assert [node.op_type for node in model.graph.node] == ["Cast", "Transpose", "Conv"]
    assert {i.name for i in model.graph.initializer} == {"w", "b"}
    _assert_same_outputs(original, model, _pixels())


@pytest.mark.parametrize("dense", DENSE)
def test_the_temperature_goes_into_the_logits_layer(dense: str) -> None:
    model = _logits_into_softmax(dense)
    original = onnx.load_from_string(model.SerializeToString())
    assert fold_scales(model) == 1
    onnx.checker.check_model(model)
    assert "Mul" not in {node.op_type for node in model.graph.node}
    _assert_same_outputs(original, model, RNG.normal(size=(5, 6)).astype(np.float32))


LEFT_ALONE: dict[str, Callable[[], onnx.ModelProto]] = {
    # Padding adds zeros after the offset; folding would move them to before it.
    "non-zero offset before padding": lambda: _pixels_into_conv(offset=-0.5),
    "weights another layer reads": lambda: _pixels_into_conv(shared=True),
    "a factor per output": lambda: _logits_into_softmax(factor=np.full(4, 0.7, np.float32)),
    "an infinite factor": lambda: _logits_into_softmax(factor=np.array(np.inf, np.float32)),
}


@pytest.mark.parametrize("build", LEFT_ALONE.values(), ids=LEFT_ALONE.keys())
def test_what_a_fold_would_change_is_left_alone(build: Callable[[], onnx.ModelProto]) -> None:
    model = build()
    before = model.SerializeToString()
    assert fold_scales(model) == 0
    assert model.SerializeToString() == before


def test_a_scaled_tensor_that_is_also_an_output_is_left_alone() -> None:
    model = _logits_into_softmax()
    model.graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, None))
    before = model.SerializeToString()
    assert fold_scales(model) == 0
    assert model.SerializeToString() == before
