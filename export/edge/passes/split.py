"""Split rewritten as one Slice per output: ONNX.js has Split on webgl only, Slice everywhere."""

from __future__ import annotations

import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, constants, probe_shapes


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    targets = [node for node in model.graph.node if node.op_type == "Split" and node.domain in ("", "ai.onnx")]
    if not targets:
        return None
    shapes = probe_shapes(model, sample)
    known = constants(model.graph)
    opset = default_opset(model)
    for node in targets:
        shape = shapes[node.input[0]] if node.input[0] in shapes else known[node.input[0]].shape
        axis = attribute(node, "axis", 0) % len(shape)
        sizes = attribute(node, "split")
        if sizes is None and len(node.input) > 1 and node.input[1]:
            if node.input[1] not in known:
                continue
            sizes = [int(v) for v in known[node.input[1]]]
        if sizes is None:
            sizes = [shapes[output][axis] for output in node.output] if node.output[0] in shapes else None
        if sizes is None:
            continue
        build = Builder(model, opset)
        start = 0
        for output, size in zip(node.output, sizes):
            build.slice(node.input[0], axis, start, start + size, output=output)
            start += size
        build.replace(node)
    return build.result()
