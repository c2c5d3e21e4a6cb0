"""Softmax/LogSoftmax rewritten so ONNX.js computes the right thing.

Opset 13 changed Softmax from "flatten to 2-D at `axis`" to "along `axis`"; ONNX.js implements
the old meaning only, so a Softmax-13 over a non-last axis gives wrong numbers without an error.
Swapping that axis with the last (Transpose, Softmax on the last axis, the same Transpose back)
means the same under both definitions. ONNX.js has no LogSoftmax: it becomes Log(Softmax).
"""

from __future__ import annotations

import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, probe_shapes


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    opset = default_opset(model)
    targets = [
        node
        for node in model.graph.node
        if node.domain in ("", "ai.onnx") and (node.op_type == "LogSoftmax" or (node.op_type == "Softmax" and opset >= 13))
    ]
    if not targets:
        return None
    shapes = probe_shapes(model, sample)
    build = Builder(model, opset)
    for node in targets:
        rank = len(shapes[node.input[0]])
        axis = attribute(node, "axis", 1 if opset < 13 else -1) % max(rank, 1)
        moved = opset >= 13 and axis != rank - 1
        if node.op_type == "Softmax" and not moved:
            continue
        value = node.input[0]
        perm = list(range(rank))
        if moved:
            perm[axis], perm[-1] = perm[-1], perm[axis]
            value = build.op("Transpose", [value], "to_last", perm=perm)
        final = node.output[0] if not moved and node.op_type == "Softmax" else None
        softmax_axis = -1 if moved else axis
        if node.op_type == "LogSoftmax":
            value = build.op("Softmax", [value], "softmax", axis=softmax_axis)
            value = build.op("Log", [value], "log", output=None if moved else node.output[0])
        else:
            value = build.op("Softmax", [value], "softmax", output=final, axis=softmax_axis)
        if moved:
            build.op("Transpose", [value], "from_last", output=node.output[0], perm=perm)
        build.replace(node)
    return build.result()
