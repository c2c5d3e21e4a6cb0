"""An `If` whose condition is a constant (once inputs are pinned or frozen) replaced by its branch.

ONNX.js has no If. Exporters emit one on a sample-rate input (silero-vad: `sr == 16000`) or on a
shape test; after `--freeze-input` and pinning, onnxsim folds the condition to a constant but
keeps the If. The taken branch's nodes and initializers move into the main graph and its outputs
are renamed to the If's outputs; the other branch goes. Names inside a branch are made fresh so
they cannot clash with the outer graph's.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...verify import Feeds
from ..graph import Names, attribute, constants, topological_sort


def _inline(model: onnx.ModelProto, node: onnx.NodeProto, branch: onnx.GraphProto, names: Names) -> list[onnx.NodeProto]:
    local = {init.name for init in branch.initializer} | {out for inner in branch.node for out in inner.output if out}
    renamed = {name: names.fresh(name) for name in local}
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


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    known = constants(model.graph)
    names = Names(model)
    changed = False
    for node in list(model.graph.node):
        if node.op_type != "If" or node.input[0] not in known:
            continue
        taken = attribute(node, "then_branch" if bool(np.asarray(known[node.input[0]]).reshape(-1)[0]) else "else_branch")
        index = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        for offset, inner in enumerate(_inline(model, node, taken, names)):
            model.graph.node.insert(index + offset, inner)
        changed = True
    if not changed:
        return None
    topological_sort(model)
    return model
