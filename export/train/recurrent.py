"""Recurrent layers' parameters laid out so each trainable tensor is one framework variable.

The ONNX LSTM/GRU bias `B` is `[Wb, Rb]` (input and recurrent halves) with the gates reordered
(ONNX: LSTM i, o, f, c; GRU z, r, h). PyTorch has two variables there (`bias_ih`, `bias_hh`);
Keras's LSTM has one bias and tf2onnx fills `Rb` with zeros. Trained as one tensor, Keras's
zero half would move too (its gradient equals the other half's) and the step would drift from
Keras. A bidirectional layer stacks both directions on the first axis of W, R and B, while each
direction is its own framework variable (PyTorch's `weight_ih_l0` and `weight_ih_l0_reverse`,
Keras's `forward_lstm` and `backward_lstm`). So before a trainable model is written, W and R
of two directions are split into one initializer per direction joined by a Concat, and each
direction's `B` into its two halves joined by a Concat (then the directions by another); a zero
half that no framework variable holds becomes a constant (not trained). The gate order is matched
in reference.py.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .reference import Variable, gate_orders
from .trainable import concat_parts

RECURRENT = {"LSTM": 4, "GRU": 3}
DIRECTIONS = ("forward", "reverse")


def _holds_a_variable(value: np.ndarray, variables: list[Variable], gates: int) -> bool:
    return any(gate_orders(v.value, value, gates) for v in variables)


class _Writer:
    """Inserts initializers, Constants and Concats before one node of the graph."""

    def __init__(self, model: onnx.ModelProto, node: onnx.NodeProto) -> None:
        self.model = model
        self.position = list(model.graph.node).index(node)

    def _insert(self, node: onnx.NodeProto) -> None:
        self.model.graph.node.insert(self.position, node)
        self.position += 1

    def tensor(self, name: str, value: np.ndarray, trained: bool) -> str:
        if trained:
            self.model.graph.initializer.append(numpy_helper.from_array(value, name))
        else:
            self._insert(helper.make_node("Constant", [], [name], name=f"{name}/zeros", value=numpy_helper.from_array(value, name)))
        return name

    def concat(self, parts: list[str], name: str, axis: int) -> str:
        self._insert(helper.make_node("Concat", parts, [name], name=f"{name}/Concat", axis=axis))
        return name


def _bias(writer: _Writer, name: str, bias: np.ndarray, variables: list[Variable], gates: int) -> str:
    """One direction's [1, 2·gates·H] bias as its input and recurrent halves, joined."""
    names = [f"{name}/input", f"{name}/recurrent"]
    for part, half in zip(names, np.split(bias, 2, axis=1)):
        writer.tensor(part, half, trained=bool(np.any(half)) or _holds_a_variable(half, variables, gates))
    return writer.concat(names, f"{name}/joined", axis=1)


def _replace(model: onnx.ModelProto, initializer: onnx.TensorProto, node: onnx.NodeProto, slot: int, joined: str) -> None:
    if sum(1 for n in model.graph.node for i in n.input if i == initializer.name) == 1:
        model.graph.initializer.remove(initializer)
    node.input[slot] = joined


def split_recurrent_biases(model: onnx.ModelProto, variables: list[Variable]) -> list[str]:
    """Split LSTM/GRU parameters per direction and each bias in halves (in place); returns the node names changed."""
    initializers = {init.name: init for init in model.graph.initializer}
    changed = []
    for node in list(model.graph.node):
        gates = RECURRENT.get(node.op_type)
        if gates is None or len(node.input) < 3:
            continue
        touched = False
        for slot in (1, 2, 3):
            if slot >= len(node.input) or node.input[slot] not in initializers:
                continue
            name = node.input[slot]
            value = numpy_helper.to_array(initializers[name])
            if value.ndim < 2 or value.shape[0] not in (1, 2) or (slot < 3 and value.shape[0] == 1):
                continue
            writer = _Writer(model, node)
            rows = [value[d : d + 1] for d in range(value.shape[0])]
            parts = [f"{name}/{DIRECTIONS[d]}" if len(rows) > 1 else name for d in range(len(rows))]
            if slot == 3:
                parts = [_bias(writer, part, row, variables, gates) for part, row in zip(parts, rows)]
            else:
                parts = [writer.tensor(part, row, trained=True) for part, row in zip(parts, rows)]
            joined = parts[0] if len(parts) == 1 else writer.concat(parts, f"{name}/directions", axis=0)
            _replace(model, initializers[name], node, slot, joined)
            touched = True
        if touched:
            changed.append(node.name or node.op_type)
    return changed


def unshare_loop_parameters(model: onnx.ModelProto) -> list[str]:
    """Give each Loop its own copy of a float initializer another Loop also carries (in place).

    tf2onnx deduplicates equal initializers: a fresh Keras Bidirectional GRU's two zero biases become
    one tensor carried by both directions' Loops, while Keras trains two variables. Returns the copies.
    """
    floats = {init.name: init for init in model.graph.initializer if init.data_type == onnx.TensorProto.FLOAT}
    owner: dict[str, str] = {}
    copies = []
    for index, node in enumerate(model.graph.node):
        if node.op_type != "Loop":
            continue
        for slot in range(2, len(node.input)):
            name = node.input[slot]
            if name not in floats:
                continue
            if owner.setdefault(name, node.name or str(index)) == (node.name or str(index)):
                continue
            copy = f"{name}/{node.name or index}"
            model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(floats[name]), copy))
            node.input[slot] = copy
            copies.append(copy)
    return copies


def gates_of(model: onnx.ModelProto) -> dict[str, int]:
    """Initializer name → gates per block, for every LSTM/GRU weight, recurrence and bias part."""
    producers = {name: node for node in model.graph.node for name in node.output}
    found = {}
    for node in model.graph.node:
        gates = RECURRENT.get(node.op_type)
        if gates is None:
            continue
        for name in node.input[1:4]:
            for part in concat_parts(name, producers):
                found[part] = gates
    return found
