"""A 2-D ConvTranspose whose kernel equals its stride, written as a 1×1 Conv and a depth-to-space.

ONNX.js 0.1.8 has no ConvTranspose on any backend. When the kernel equals the stride `s` (and
there is no padding, dilation or output padding), the output windows do not overlap: output
pixel `(h·s + i, w·s + j)` of channel `o` is `Σ_c x[c, h, w] · W[c, o, i, j]` (+ bias), a 1×1
convolution producing `O·s·s` channels, then a Reshape to `[N, O, s, s, H, W]`, a Transpose to
`[N, O, H, s, W, s]` and a Reshape to `[N, O, H·s, W·s]` (rank 6, what ONNX.js takes at most).
No sum is reordered beyond a 1×1 convolution's own. This is the decoder upsampling of PP-OCR's
DB head (and of U-Nets); other ConvTransposes stay for onnxruntime-web.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, constants, probe_shapes


def _fits(node: onnx.NodeProto, weight: np.ndarray) -> bool:
    kernel = list(weight.shape[2:])
    strides = attribute(node, "strides", [1] * len(kernel))
    plain = {
        "pads": [0] * 2 * len(kernel),
        "dilations": [1] * len(kernel),
        "output_padding": [0] * len(kernel),
    }
    return (
        len(kernel) == 2
        and list(strides) == kernel
        and all(list(attribute(node, name, default)) == default for name, default in plain.items())
        and attribute(node, "output_shape") is None
        and attribute(node, "auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    )


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    known = constants(model.graph)
    nodes = [
        node
        for node in model.graph.node
        if node.op_type == "ConvTranspose"
        and node.input[1] in known
        and _fits(node, known[node.input[1]])
        and (len(node.input) < 3 or not node.input[2] or node.input[2] in known)
    ]
    if not nodes:
        return None
    shapes = probe_shapes(model, sample)
    build = Builder(model, default_opset(model))
    for node in nodes:
        weight = known[node.input[1]]  # [C, O / group, s, s]
        channels, per_group, step, _ = weight.shape
        group = attribute(node, "group", 1)
        outputs = per_group * group
        # 1×1 weight [O·s·s, C / group, 1, 1], channels ordered (group, o, i, j) so that o = g·O/g + o_local
        grouped = weight.reshape(group, channels // group, per_group, step, step)
        pointwise = grouped.transpose(0, 2, 3, 4, 1).reshape(outputs * step * step, channels // group, 1, 1)
        inputs = [node.input[0], build.const(pointwise.astype(weight.dtype), "pointwise")]
        if len(node.input) > 2 and node.input[2]:
            inputs.append(build.const(np.repeat(known[node.input[2]], step * step).astype(weight.dtype), "bias"))
        depth = build.op("Conv", inputs, "pointwise", kernel_shape=[1, 1], group=group)
        height, width = shapes[node.input[0]][2:]  # -1: the batch, free or not
        blocks = build.op("Reshape", [depth, build.const(np.array([-1, outputs, step, step, height, width], np.int64))])
        spread = build.op("Transpose", [blocks], perm=[0, 1, 4, 2, 5, 3])
        merged = np.array([-1, outputs, height * step, width * step], np.int64)
        build.op("Reshape", [spread, build.const(merged, "merged")], output=node.output[0])
        build.replace(node)
    return build.result()
