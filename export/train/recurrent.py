"""Recurrent layers' parameters laid out so each trainable tensor is one framework variable.

The ONNX LSTM/GRU bias `B` is `[Wb, Rb]` (input and recurrent halves) with the gates reordered
(ONNX: LSTM i, o, f, c; GRU z, r, h). PyTorch has two variables there (`bias_ih`, `bias_hh`);
Keras's LSTM has one bias and tf2onnx fills `Rb` with zeros. Trained as one tensor, Keras's
zero half would move too (its gradient equals the other half's) and the step would drift from
Keras. So before a trainable model is written, a one-direction `B` that is an initializer is
split into two initializers joined by a Concat, and a zero half that no framework variable
holds becomes a constant (not trained). The gate order is matched in reference.py.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .reference import Variable, gate_orders

RECURRENT = {"LSTM": 4, "GRU": 3}


def _holds_a_variable(value: np.ndarray, variables: list[Variable], gates: int) -> bool:
    return any(gate_orders(v.value, value, gates) for v in variables)


def split_recurrent_biases(model: onnx.ModelProto, variables: list[Variable]) -> list[str]:
    """Split each one-direction LSTM/GRU bias initializer in two (in place); returns the node names changed."""
    initializers = {init.name: init for init in model.graph.initializer}
    changed = []
    for node in list(model.graph.node):
        gates = RECURRENT.get(node.op_type)
        if gates is None or len(node.input) < 4 or node.input[3] not in initializers:
            continue
        bias = numpy_helper.to_array(initializers[node.input[3]])
        if bias.ndim != 2 or bias.shape[0] != 1:
            continue
        halves = np.split(bias, 2, axis=1)
        names = [f"{node.input[3]}/input", f"{node.input[3]}/recurrent"]
        position = list(model.graph.node).index(node)
        for name, half in zip(names, halves):
            if not np.any(half) and not _holds_a_variable(half, variables, gates):
                model.graph.node.insert(
                    position, helper.make_node("Constant", [], [name], name=f"{name}/zeros", value=numpy_helper.from_array(half, name))
                )
                position += 1
            else:
                model.graph.initializer.append(numpy_helper.from_array(half, name))
        concat = helper.make_node("Concat", names, [f"{node.input[3]}/joined"], name=f"{node.input[3]}/Concat", axis=1)
        model.graph.node.insert(position, concat)
        if sum(1 for n in model.graph.node for i in n.input if i == node.input[3]) == 1:
            model.graph.initializer.remove(initializers[node.input[3]])
        node.input[3] = concat.output[0]
        changed.append(node.name or node.op_type)
    return changed


def gates_of(model: onnx.ModelProto) -> dict[str, int]:
    """Initializer name → gates per block, for every LSTM/GRU weight, recurrence and bias half."""
    producers = {name: node for node in model.graph.node for name in node.output}
    found = {}
    for node in model.graph.node:
        gates = RECURRENT.get(node.op_type)
        if gates is None:
            continue
        for name in node.input[1:4]:
            concat = producers.get(name)
            for part in concat.input if concat is not None and concat.op_type == "Concat" else [name]:
                found[part] = gates
    return found
