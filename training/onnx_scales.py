"""Constant scalings folded into the weights of the layer beside them.

The exported signature scales pixels by 1/255 before the first convolution and divides the
logits by the temperature before the softmax; tf2onnx writes both as Mul nodes (and the
rescaling's zero offset as an Add), run on every call. Scaling by a constant commutes with a
linear layer, so `fold_scales` multiplies the layer's weights by the constant once instead:

- input side: `Mul(x, c)`, then any of Add(zeros), Reshape, Transpose, Flatten, Squeeze,
  Unsqueeze, Identity, then `Conv(., W)` or `MatMul(., W)` becomes that chain on `x` with `W * c`
  (a Conv's zero padding is zero before and after scaling, so borders stay exact);
- output side: `MatMul(x, W)` (then `Add(., b)`), or `Gemm(x, W, b)`, then `Mul(., c)` becomes
  the layer with `W * c` and `b * c`.

A fold needs `c` to be one finite number, the weights to be read by that layer alone, and every
tensor in between to feed only the next node. Outputs change by rounding only (the scaled weights
are rounded once); the publish-time parity check runs on the folded graph.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import helper, numpy_helper

from training.onnx_graph import drop_unused

# Operators that move or relabel values without computing on them: scaling commutes with them.
_MOVES_DATA = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"})


class _Graph:
    """The lookups both folds need, over one graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.graph = model.graph
        self.constants = {i.name: i for i in self.graph.initializer}
        self.readers = Counter(name for node in self.graph.node for name in node.input)
        self.readers.update(output.name for output in self.graph.output)
        self.consumer = {name: node for node in self.graph.node for name in node.input}
        self.producer = {name: node for node in self.graph.node for name in node.output}

    def scalar(self, name: str) -> float | None:
        """The value of a one-element finite float constant, else None."""
        if name not in self.constants:
            return None
        array = numpy_helper.to_array(self.constants[name])
        if array.size != 1 or array.dtype.kind != "f" or not np.isfinite(array).all():
            return None
        return float(array.reshape(()))

    def is_zeros(self, name: str) -> bool:
        return name in self.constants and not numpy_helper.to_array(self.constants[name]).any()

    def only_reader(self, tensor: str) -> onnx.NodeProto | None:
        """The node that reads `tensor`, when exactly one node (and no graph output) does."""
        return self.consumer.get(tensor) if self.readers[tensor] == 1 else None

    def own_weight(self, name: str) -> bool:
        """Whether `name` is a float constant that only one node reads."""
        constant = self.constants.get(name)
        return (
            constant is not None
            and self.readers[name] == 1
            and helper.tensor_dtype_to_np_dtype(constant.data_type).kind == "f"
        )

    def scale(self, name: str, factor: float) -> None:
        array = numpy_helper.to_array(self.constants[name])
        scaled = (array * np.asarray(factor, array.dtype)).astype(array.dtype)
        self.constants[name].CopyFrom(numpy_helper.from_array(scaled, name))

    def bypass(self, node: onnx.NodeProto, data: str) -> None:
        """Make whatever reads `node`'s output read `data` instead (`node` is left unread)."""
        for reader in self.graph.node:
            for index, name in enumerate(reader.input):
                if name == node.output[0]:
                    reader.input[index] = data


def _mul_operands(g: _Graph, node: onnx.NodeProto) -> tuple[str, float] | None:
    """(data input, constant factor) of a Mul by one finite number, else None."""
    if node.op_type != "Mul" or len(node.input) != 2:
        return None
    for data, constant in (node.input, reversed(node.input)):
        factor = g.scalar(constant)
        if factor is not None and constant != data:
            return data, factor
    return None


def _fold_into_next_layer(g: _Graph, mul: onnx.NodeProto, data: str, factor: float) -> bool:
    zero_adds = []
    tensor = mul.output[0]
    while (reader := g.only_reader(tensor)) is not None:
        if reader.op_type == "Add" and len(reader.input) == 2 and reader.input[0] == tensor:
            if not g.is_zeros(reader.input[1]):
                return False
            zero_adds.append(reader)
        elif reader.op_type in ("Conv", "MatMul"):
            weight = reader.input[1]
            if reader.input[0] != tensor or not g.own_weight(weight):
                return False
            g.scale(weight, factor)
            for add in zero_adds:
                g.bypass(add, add.input[0])
            g.bypass(mul, data)
            return True
        elif reader.op_type not in _MOVES_DATA or reader.input[0] != tensor:
            return False
        tensor = reader.output[0]
    return False


def _fold_into_previous_layer(g: _Graph, mul: onnx.NodeProto, data: str, factor: float) -> bool:
    producer = g.producer.get(data)
    if producer is None or g.only_reader(data) is not mul:
        return False
    if producer.op_type == "Gemm" and len(producer.input) == 3:
        weights = [producer.input[1], producer.input[2]]
    elif producer.op_type == "MatMul":
        weights = [producer.input[1]]
    elif producer.op_type == "Add" and len(producer.input) == 2:
        matmul = g.producer.get(producer.input[0])
        if (
            matmul is None
            or matmul.op_type != "MatMul"
            or g.only_reader(matmul.output[0]) is not producer
        ):
            return False
        weights = [matmul.input[1], producer.input[1]]
    else:
        return False
    if not all(g.own_weight(name) for name in weights):
        return False
    for name in weights:
        g.scale(name, factor)
    g.bypass(mul, data)
    return True


def fold_scales(model: onnx.ModelProto) -> int:
    """Fold each Mul by a constant into the linear layer after or before it (see the module
    docstring); returns how many were folded. `model` is changed in place."""
    folded = 0
    while _fold_one(_Graph(model)):  # the lookups are rebuilt after each change
        drop_unused(model)  # the Mul (and any zero Adds) it bypassed
        folded += 1
    return folded


def _fold_one(g: _Graph) -> bool:
    for node in g.graph.node:
        operands = _mul_operands(g, node)
        if operands is None or g.only_reader(node.output[0]) is None:
            continue
        data, factor = operands
        if _fold_into_next_layer(g, node, data, factor):
            return True
        if _fold_into_previous_layer(g, node, data, factor):
            return True
    return False
