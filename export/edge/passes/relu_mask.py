"""ReLU's backward mask `Where(LessOrEqual(relu, 0), 0, g)` → `Mul(g, Sign(relu))`.

A training step through a ReLU gets its gradient from `threshold_backward` on the ReLU's output r,
exported as Where/LessOrEqual, which ONNX.js lacks. Since r ≥ 0, r ≤ 0 exactly when r = 0, and
Sign(r) is then 0 and otherwise 1: the product is the same gradient for every finite g, using
only Sign and Mul (ONNX.js cpu has both). Only that exact pattern is rewritten.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, constants


def _zero(known: dict[str, np.ndarray], name: str) -> bool:
    return name in known and known[name].size == 1 and float(known[name].reshape(-1)[0]) == 0.0


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    known = constants(model.graph)
    producers = {output: node for node in model.graph.node for output in node.output}
    targets = []
    for node in model.graph.node:
        if node.op_type != "Where" or not _zero(known, node.input[1]):
            continue
        test = producers.get(node.input[0])
        if test is None or test.op_type != "LessOrEqual" or not _zero(known, test.input[1]):
            continue
        source = producers.get(test.input[0])
        if source is not None and source.op_type == "Relu":
            targets.append((node, test.input[0]))
    if not targets:
        return None
    build = Builder(model, default_opset(model))
    for node, relu in targets:
        build.op("Mul", [node.input[2], build.op("Sign", [relu])], output=node.output[0])
        build.replace(node)
    return build.result()
