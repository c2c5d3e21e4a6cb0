"""Expand of a computed tensor to a fixed shape → Add of a zero constant of that shape.

A training step's backward pass broadcasts gradients with Expand (a bias gradient back to the
batch, a mean's gradient back to its input); ONNX.js has no Expand on cpu or wasm. Adding
zeros broadcasts the same way and leaves every value as it was (x + 0 = x for every float but
-0, which becomes +0 and compares equal), for every input shape: Expand and Add broadcast by the
same rule. Only a constant target shape is taken.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, constants, probe_values


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    known = constants(model.graph)
    targets = [node for node in model.graph.node if node.op_type == "Expand" and node.input[1] in known]
    if not targets:
        return None
    values = probe_values(model, sample)
    build = Builder(model, default_opset(model))
    for node in targets:
        value = node.input[0]
        dtype = known[value].dtype if value in known else values[value].dtype
        zeros = build.const(np.zeros([int(d) for d in known[node.input[1]]], dtype), "expand_zeros")
        build.op("Add", [value, zeros], output=node.output[0])
        build.replace(node)
    return build.result()
