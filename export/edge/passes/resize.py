"""Nearest-neighbour Resize by whole-number factors written as Reshape → Tile → Reshape.

ONNX.js 0.1.8 has Resize on no backend and Upsample only at opsets 7-8 (the lowering targets 9).
YOLO's and Paddle's upsampling is nearest ×2: each element repeated along a new unit axis after
every upsampled axis, then merged, picks exactly `in[floor(i / s)]`, what nearest Resize picks for
whole-number scales in its usual coordinate modes; the lowering's parity check confirms it per
model. Shapes come from a probe on the sample (the graph is pinned or static by now); any other
Resize (linear, cubic, fractional factors) is left for onnxruntime-web.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, probe_shapes


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    nodes = [node for node in model.graph.node if node.op_type in ("Resize", "Upsample")]
    if not nodes:
        return None
    shapes = probe_shapes(model, sample)
    build = Builder(model, default_opset(model))
    for node in nodes:
        mode = attribute(node, "mode", "nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        before, after = shapes[node.input[0]], shapes[node.output[0]]
        if mode != "nearest" or len(before) != len(after) or any(b == 0 or a % b for b, a in zip(before, after)):
            continue
        factors = [a // b for b, a in zip(before, after)]
        # a unit axis only after the upsampled axes: ONNX.js takes tensors of rank 6 at most
        spread = [dim for size, factor in zip(before, factors) for dim in ((size, 1) if factor > 1 else (size,))]
        repeats = [count for factor in factors for count in ((1, factor) if factor > 1 else (1,))]
        if len(spread) > 6:
            continue
        expanded = build.op("Reshape", [node.input[0], build.const(np.array(spread, np.int64), "spread")])
        tiled = build.op("Tile", [expanded, build.const(np.array(repeats, np.int64), "repeats")])
        build.op("Reshape", [tiled, build.const(np.array(after, np.int64), "merged")], output=node.output[0])
        build.replace(node)
    return build.result()
