"""An `If` whose condition is a constant (once inputs are pinned or frozen) replaced by its branch.

ONNX.js has no If. Exporters emit one on a sample-rate input (silero-vad: `sr == 16000`) or on a
shape test (`Shape(x)[2] == 1`). Once every input dimension is pinned, a condition computed only
from constants and `Shape` nodes has one value for every input the file takes: the probe on the
sample gives it. (onnxsim cannot fold these itself: it fails on silero-vad's nested branches.) The taken branch's nodes and initializers move into the main graph and its outputs
are renamed to the If's outputs; the other branch goes. A branch name that clashes with the outer
graph's is made fresh.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...verify import Feeds
from ..graph import Names, attribute, constants, probe_values, topological_sort


def _inline(model: onnx.ModelProto, node: onnx.NodeProto, branch: onnx.GraphProto, names: Names) -> list[onnx.NodeProto]:
    local = {init.name for init in branch.initializer} | {out for inner in branch.node for out in inner.output if out}
    # Rename only what clashes with the outer graph: nested subgraphs refer to branch values by name.
    renamed = {name: names.fresh(name) for name in local if name in names.taken}
    for output, outer in zip(branch.output, node.output):
        renamed[output.name] = outer if output.name in local else renamed.get(output.name, output.name)
    nodes = []
    for init in branch.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(init)
        copy.name = renamed[init.name]
        model.graph.initializer.append(copy)
    for inner in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(inner)
        copy.name = names.fresh(inner.name or inner.op_type)
        copy.input[:] = [renamed.get(name, name) for name in inner.input]
        copy.output[:] = [renamed.get(name, name) for name in inner.output]
        nodes.append(copy)
    for output, outer in zip(branch.output, node.output):
        if output.name not in local:  # the branch passes an outer value (or an initializer) straight out
            nodes.append(onnx.helper.make_node("Identity", [renamed.get(output.name, output.name)], [outer], name=names.fresh("if_out")))
    return nodes


def _fully_pinned(model: onnx.ModelProto) -> bool:
    return all(dim.HasField("dim_value") for value in model.graph.input for dim in value.type.tensor_type.shape.dim)


def _shape_only(name: str, producers: dict, known: dict, seen: set) -> bool:
    """Whether `name` depends on the inputs only through their shapes (constants and Shape nodes)."""
    if name in known or name in seen:
        return True
    node = producers.get(name)
    if node is None or any(entry.type == onnx.AttributeProto.GRAPH for entry in node.attribute):
        return False
    seen.add(name)
    return node.op_type == "Shape" or all(_shape_only(i, producers, known, seen) for i in node.input if i)


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    known = constants(model.graph)
    producers = {output: node for node in model.graph.node for output in node.output}
    pinned = _fully_pinned(model)
    conditions = {}
    for node in model.graph.node:
        if node.op_type != "If":
            continue
        if node.input[0] in known:
            conditions[node.name or id(node)] = known[node.input[0]]
        elif pinned and _shape_only(node.input[0], producers, known, set()):
            conditions[node.name or id(node)] = None
    if not conditions:
        return None
    if any(value is None for value in conditions.values()):
        probed = probe_values(model, sample)
    names = Names(model)
    changed = False
    for node in list(model.graph.node):
        if node.op_type != "If" or (node.name or id(node)) not in conditions:
            continue
        value = conditions[node.name or id(node)]
        value = probed[node.input[0]] if value is None else value
        taken = attribute(node, "then_branch" if bool(np.asarray(value).reshape(-1)[0]) else "else_branch")
        index = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        for offset, inner in enumerate(_inline(model, node, taken, names)):
            model.graph.node.insert(index + offset, inner)
        changed = True
    if not changed:
        return None
    topological_sort(model)
    return model
