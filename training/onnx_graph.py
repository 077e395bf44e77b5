"""Simplifications of a converted ONNX graph that leave every output as it was.

tf2onnx turns Keras's `Flatten` into a Reshape whose target shape is computed on every call from
the input's Shape (Shape, Gather, Cast, Slice, Concat, Cast): six small operators ONNX Runtime
runs on every call for a shape that never changes. Where shape inference shows
that such a Reshape keeps the batch dimension and fixes all the others, `fold_batch_reshapes`
gives it the constant shape `[-1, d1, ...]` instead and drops the operators that computed it.
The publish-time parity check (`training.onnx_export`) runs on the simplified graph.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

Dim = int | str  # a static size, or the symbol of a dynamic one ("" or 0: unknown)


def fold_batch_reshapes(model: onnx.ModelProto) -> int:
    """Give each Reshape that keeps the batch dimension (the same symbol in and out) and has
    static other dimensions (the same element count) a constant shape, then drop what no
    longer feeds an output. Returns the number of Reshapes folded; `model` is changed in
    place."""
    shapes = _inferred_shapes(model)
    graph = model.graph
    constants = {initializer.name for initializer in graph.initializer}
    folded = 0
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) != 2 or node.input[1] in constants:
            continue
        if any(attribute.name == "allowzero" and attribute.i for attribute in node.attribute):
            continue
        data, out = shapes.get(node.input[0]), shapes.get(node.output[0])
        if not data or not out or not _keeps_batch(data, out):
            continue
        name = f"{node.output[0]}__static_shape"
        graph.initializer.append(numpy_helper.from_array(np.array([-1, *out[1:]], np.int64), name))
        node.input[1] = name
        folded += 1
    if folded:
        drop_unused(model)
    return folded


def _keeps_batch(data: list[Dim], out: list[Dim]) -> bool:
    batch = data[0]
    if not isinstance(batch, str) or not batch or out[0] != batch:
        return False
    rest_in, rest_out = data[1:], out[1:]
    if not all(isinstance(d, int) and d > 0 for d in (*rest_in, *rest_out)):
        return False
    return math.prod(rest_in) == math.prod(rest_out)  # type: ignore[arg-type]


def _inferred_shapes(model: onnx.ModelProto) -> dict[str, list[Dim]]:
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    values = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    shapes: dict[str, list[Dim]] = {}
    for value in values:
        tensor = value.type.tensor_type
        if tensor.HasField("shape"):
            shapes[value.name] = [d.dim_param or d.dim_value for d in tensor.shape.dim]
    return shapes


def drop_unused(model: onnx.ModelProto) -> None:
    """Remove the nodes whose outputs nothing uses, then the initializers nothing reads (not
    in a graph with subgraphs, whose bodies may read names that no node lists)."""
    graph = model.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for node in graph.node for a in node.attribute):  # fmt: skip
        return
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):  # nodes are in topological order
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = [initializer for initializer in graph.initializer if initializer.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)
