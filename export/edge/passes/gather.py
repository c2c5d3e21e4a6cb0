"""Gather with a constant scalar index rewritten as Slice + Squeeze.

tf2onnx reads one time step of a sequence with `Gather(x, t)` (a 0-D index); ONNX.js's webgl
backend cannot compile a shader for a 0-D index ("array size must be greater than zero").
"""

from __future__ import annotations

import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, constants, probe_shapes


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    known = constants(model.graph)
    targets = [node for node in model.graph.node if node.op_type == "Gather" and node.input[1] in known and known[node.input[1]].ndim == 0]
    if not targets:
        return None
    shapes = probe_shapes(model, sample)
    for node in targets:
        shape = shapes[node.input[0]] if node.input[0] in shapes else known[node.input[0]].shape
        axis = attribute(node, "axis", 0) % len(shape)
        index = int(known[node.input[1]]) % shape[axis]
        build = Builder(model, default_opset(model))
        build.squeeze(build.slice(node.input[0], axis, index, index + 1), [axis], output=node.output[0])
        build.replace(node)
    return build.result()
