"""HardSigmoid, HardSwish, two-input Max and Pow written in operators ONNX.js 0.1.8 has on every backend.

HardSigmoid(x) = Clip(alpha·x + beta, 0, 1) and HardSwish(x) = x·HardSigmoid_{1/6, 1/2}(x), as
the ONNX spec defines them (so the figures match onnxruntime's kernels to rounding). Pow with a
constant exponent of 1, 2, 3 or 0.5 becomes Identity, Mul chains or Sqrt; any other Pow stays
(webgl runs Pow). Max(a, b) becomes Relu(a − b) + b, which rounds (the lowering's parity check
bounds it). Clip is written at the model's opset; `opset-down` moves its bounds to
attributes.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, constants


def _clip01(build: Builder, value: str, output: str) -> str:
    if build.opset >= 11:
        zero, one = build.const(np.array(0, np.float32), "zero"), build.const(np.array(1, np.float32), "one")
        return build.op("Clip", [value, zero, one], output=output)
    return build.op("Clip", [value], output=output, min=0.0, max=1.0)


def _hard_sigmoid(build: Builder, value: str, alpha: float, beta: float, output: str | None = None) -> str:
    scaled = build.op("Mul", [value, build.const(np.array(alpha, np.float32), "alpha")])
    shifted = build.op("Add", [scaled, build.const(np.array(beta, np.float32), "beta")])
    return _clip01(build, shifted, output or build.names.fresh("hard_sigmoid"))


def _pow(build: Builder, node: onnx.NodeProto, exponent: float) -> bool:
    base, output = node.input[0], node.output[0]
    if exponent == 1:
        build.op("Identity", [base], output=output)
    elif exponent == 2:
        build.op("Mul", [base, base], output=output)
    elif exponent == 3:
        build.op("Mul", [build.op("Mul", [base, base]), base], output=output)
    elif exponent == 0.5:
        build.op("Sqrt", [base], output=output)
    else:
        return False
    return True


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    build = Builder(model, default_opset(model))
    known = constants(model.graph)
    for node in list(model.graph.node):
        if node.op_type == "HardSigmoid":
            _hard_sigmoid(build, node.input[0], attribute(node, "alpha", 0.2), attribute(node, "beta", 0.5), node.output[0])
        elif node.op_type == "HardSwish":
            gate = _hard_sigmoid(build, node.input[0], 1.0 / 6.0, 0.5)
            build.op("Mul", [node.input[0], gate], output=node.output[0])
        elif node.op_type == "Max" and len(node.input) == 2:
            # max(a, b) = relu(a - b) + b: no ONNX.js backend has Max; rounding stays within the parity check
            gap = build.op("Relu", [build.op("Sub", [node.input[0], node.input[1]])])
            build.op("Add", [gap, node.input[1]], output=node.output[0])
        elif node.op_type == "Pow" and node.input[1] in known and np.asarray(known[node.input[1]]).size == 1:
            if not _pow(build, node, float(np.asarray(known[node.input[1]]).reshape(-1)[0])):
                continue
        else:
            continue
        build.replace(node)
    return build.result()
