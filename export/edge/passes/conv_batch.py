"""A Conv of height 1 over a batch rewritten to see one image: the batch moved into the height.

ONNX.js 0.1.8's cpu Conv (`lib/backends/cpu/ops/conv.js`, `conv2d`) declares its image offsets
inside the per-image loop, so every image is convolved from image 0's data into image 0's
output: with more than one image, images 1… come out as zeros (plus the bias), without an
error. Its wasm Conv is right. A batch-1 inference file passes; a training step (a fixed batch
of 32) or a predict of several rows does not.

For a Conv whose input height is 1 with a kernel height of 1 and no height padding (every
1-D convolution after `conv1d-to-2d`), rows of the height axis never mix, so
`[N, C, 1, L]` → Transpose → `[1, C, N, L]`, the same Conv (height stride 1), and the
Transpose back give exactly the same numbers, with one image for ONNX.js. Taller kernels stay
as they are (`rules.py` names them on cpu when the batch may exceed 1).
"""

from __future__ import annotations

import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, constants, probe_shapes

_SWAP_BATCH_AND_HEIGHT = [2, 1, 0, 3]  # its own inverse


def _rows_never_mix(node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]]) -> bool:
    data, weight = shapes.get(node.input[0]), shapes.get(node.input[1])
    if data is None or weight is None or len(data) != 4 or len(weight) != 4:
        return False
    pads = attribute(node, "pads", [0, 0, 0, 0])
    auto_pad = attribute(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    return data[2] == 1 and weight[2] == 1 and pads[0] == pads[2] == 0 and auto_pad in ("NOTSET", "VALID")


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    candidates = [node for node in model.graph.node if node.op_type == "Conv" and node.domain in ("", "ai.onnx")]
    if not candidates:
        return None
    shapes = probe_shapes(model, sample)
    shapes.update((name, value.shape) for name, value in constants(model.graph).items() if name not in shapes)
    targets = [node for node in candidates if _rows_never_mix(node, shapes)]
    if not targets:
        return None
    opset = default_opset(model)
    for node in targets:
        build = Builder(model, opset)
        rows = build.op("Transpose", [node.input[0]], "batch_as_height", perm=_SWAP_BATCH_AND_HEIGHT)
        conv = build.op("Conv", [rows, *node.input[1:]], "conv_one_image")
        for entry in node.attribute:
            value = onnx.helper.get_attribute_value(entry)
            if entry.name in ("strides", "dilations"):
                value = [1, *value[1:]]  # the height now holds the batch: every row is an output row
            build.nodes[-1].attribute.append(onnx.helper.make_attribute(entry.name, value))
        build.op("Transpose", [conv], "height_as_batch", output=node.output[0], perm=_SWAP_BATCH_AND_HEIGHT)
        build.replace(node)
    return build.result()
