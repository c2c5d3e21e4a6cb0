"""1-D Conv / MaxPool / AveragePool (and their Global forms) rewritten as 2-D with a height of 1.

ONNX.js runs only 2-D convolutions and pools. `[N, C, L]` becomes `[N, C, 1, L]` (Unsqueeze),
the kernel and its attributes gain a leading 1 (pads `[a, b]` → `[0, a, 0, b]`), and the result
is squeezed back to `[N, C', L']`.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, constants, probe_shapes

_OPS = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool"}


def _widen_attributes(node: onnx.NodeProto) -> list[onnx.AttributeProto]:
    widened = []
    for entry in node.attribute:
        value = onnx.helper.get_attribute_value(entry)
        if entry.name in ("kernel_shape", "strides", "dilations"):
            value = [1, *value]
        elif entry.name == "pads":
            value = [0, value[0], 0, value[1]]
        widened.append(onnx.helper.make_attribute(entry.name, value))
    return widened


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    candidates = [node for node in model.graph.node if node.op_type in _OPS and node.domain in ("", "ai.onnx")]
    if not candidates:
        return None
    shapes = probe_shapes(model, sample)
    targets = [node for node in candidates if len(shapes[node.input[0]]) == 3]
    if not targets:
        return None
    opset = default_opset(model)
    known = constants(model.graph)
    for node in targets:
        build = Builder(model, opset)
        inputs = [build.unsqueeze(node.input[0], [2])]
        if node.op_type == "Conv":
            weight = node.input[1]
            if weight in known:
                inputs.append(build.const(known[weight][:, :, np.newaxis, :], "weight2d"))
            else:
                inputs.append(build.unsqueeze(weight, [2]))
            inputs.extend(node.input[2:])
        wide = build.op(node.op_type, inputs, f"{node.op_type}2d")
        build.nodes[-1].attribute.extend(_widen_attributes(node))
        extra = list(node.output[1:])  # MaxPool's Indices output has no 2-D equivalent here
        if any(extra):
            return None
        build.squeeze(wide, [2], output=node.output[0])
        build.replace(node)
    return build.result()
