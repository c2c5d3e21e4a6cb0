"""A Slice that takes exactly one piece of a Concat replaced by that piece.

An unrolled Keras GRU stacks every step's state (Concat) only to slice the last one out; the
stack is dead weight, and ONNX.js's webgl backend cannot compile a shader for a Concat of many
inputs. Dropping the pair leaves the graph the same values with less work. An unrolled Keras
LSTM puts a Squeeze of its direction axis between the two (Concat → Squeeze → Slice): the piece
is then squeezed the same way.
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


def _squeezed_axes(squeeze: onnx.NodeProto, known: dict[str, np.ndarray], rank: int) -> list[int] | None:
    """The axes a Squeeze removes (attribute before opset 13, input after), or None when implicit."""
    axes = attribute(squeeze, "axes") if len(squeeze.input) == 1 else known.get(squeeze.input[1])
    return None if axes is None else sorted(int(a) % rank for a in axes)


def _take(node: onnx.NodeProto, piece: str, squeeze: onnx.NodeProto | None) -> None:
    """Turn the Slice into Identity(piece), or into the same Squeeze applied to the piece."""
    node.op_type = "Identity" if squeeze is None else "Squeeze"
    del node.input[:], node.attribute[:]
    node.input.append(piece)
    if squeeze is not None:
        node.input.extend(squeeze.input[1:])
        node.attribute.extend(squeeze.attribute)


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    producers = {output: node for node in model.graph.node for output in node.output}
    known = constants(model.graph)
    outputs = {value.name for value in model.graph.output}
    shapes = None
    changed = False
    for node in model.graph.node:
        source = producers.get(node.input[0]) if node.op_type == "Slice" else None
        squeeze = source if source is not None and source.op_type == "Squeeze" else None
        concat = producers.get(squeeze.input[0]) if squeeze is not None else source
        if concat is None or concat.op_type != "Concat" or node.output[0] in outputs:
            continue
        bounds = _bounds(node, known)
        if bounds is None or len(bounds[0]) != 1 or (bounds[3] is not None and bounds[3] != [1]):
            continue
        shapes = shapes or probe_shapes(model, sample)
        rank = len(shapes[concat.output[0]])
        concat_axis = attribute(concat, "axis") % rank
        squeezed = _squeezed_axes(squeeze, known, rank) if squeeze is not None else []
        if squeezed is None or concat_axis in squeezed:
            continue
        axis = (bounds[2] or [0])[0] % (rank - len(squeezed))
        if axis != concat_axis - sum(1 for a in squeezed if a < concat_axis):
            continue
        total = shapes[concat.output[0]][concat_axis]
        start, end = (min(max(v + total if v < 0 else v, 0), total) for v in (bounds[0][0], bounds[1][0]))
        offset = 0
        for piece in concat.input:
            size = shapes[piece][concat_axis] if piece in shapes else known[piece].shape[concat_axis]
            if (start, end) == (offset, offset + size):
                _take(node, piece, squeeze)
                changed = True
                break
            offset += size
    if not changed:
        return None
    return remove_dead(model)
