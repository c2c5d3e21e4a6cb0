"""A Slice that takes exactly one piece of a Concat replaced by that piece.

An unrolled Keras GRU stacks every step's state (Concat) only to slice the last one out; the
stack is dead weight, and ONNX.js's webgl backend cannot compile a shader for a Concat of many
inputs. Dropping the pair leaves the graph the same values with less work.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...verify import Feeds
from ..graph import attribute, constants, probe_shapes, remove_dead


def _bounds(node: onnx.NodeProto, known: dict[str, np.ndarray]) -> tuple[list, list, list, list] | None:
    if len(node.input) == 1:  # opset < 10: attributes
        return attribute(node, "starts"), attribute(node, "ends"), attribute(node, "axes"), None
    parts = [known.get(name) if name else None for name in list(node.input[1:]) + [""] * 4][:4]
    if parts[0] is None or parts[1] is None or any(node.input[i] and parts[i - 1] is None for i in range(3, len(node.input))):
        return None
    return tuple(None if p is None else [int(v) for v in p] for p in parts)  # type: ignore[return-value]


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    producers = {output: node for node in model.graph.node for output in node.output}
    known = constants(model.graph)
    outputs = {value.name for value in model.graph.output}
    shapes = None
    changed = False
    for node in model.graph.node:
        concat = producers.get(node.input[0]) if node.op_type == "Slice" else None
        if concat is None or concat.op_type != "Concat" or node.output[0] in outputs:
            continue
        bounds = _bounds(node, known)
        if bounds is None or len(bounds[0]) != 1 or (bounds[3] is not None and bounds[3] != [1]):
            continue
        shapes = shapes or probe_shapes(model, sample)
        rank = len(shapes[concat.output[0]])
        axis = (bounds[2] or [0])[0] % rank
        if axis != attribute(concat, "axis") % rank:
            continue
        total = shapes[concat.output[0]][axis]
        start, end = (min(max(v + total if v < 0 else v, 0), total) for v in (bounds[0][0], bounds[1][0]))
        offset = 0
        for piece in concat.input:
            size = shapes[piece][axis] if piece in shapes else known[piece].shape[axis]
            if (start, end) == (offset, offset + size):
                node.op_type = "Identity"
                del node.input[:], node.attribute[:]
                node.input.append(piece)
                changed = True
                break
            offset += size
    if not changed:
        return None
    return remove_dead(model)
