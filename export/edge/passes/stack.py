"""A stack built as Concat of Unsqueeze-d values rebuilt as Concat on the last axis + Reshape.

An unrolled recurrence with `return_sequences=True` stacks every step's state: Concat(Unsqueeze(h_t)).
On ONNX.js's webgl backend an Unsqueeze shares its input's texture and leaves it with the
unsqueezed layout, so the next step's MatMul that reads h_t too fails to compile its shader
("bcastMatmulIndices_A: no matching overloaded function"). The same stack without Unsqueeze:
concatenate the pieces along their last axis, Reshape that axis into (pieces, last), and
Transpose the pieces axis to where the stack put it. Same values, nothing shared.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, constants, probe_shapes


def _unsqueeze_axes(node: onnx.NodeProto, known: dict[str, np.ndarray]) -> list[int] | None:
    if len(node.input) > 1:
        return [int(v) for v in known[node.input[1]]] if node.input[1] in known else None
    return attribute(node, "axes")


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    producers = {output: node for node in model.graph.node for output in node.output}
    known = constants(model.graph)
    targets = [
        node
        for node in model.graph.node
        if node.op_type == "Concat"
        and len(node.input) > 1
        and all(getattr(producers.get(name), "op_type", None) == "Unsqueeze" for name in node.input)
    ]
    if not targets:
        return None
    shapes = probe_shapes(model, sample)
    shapes.update({name: value.shape for name, value in known.items()})
    for node in targets:
        pieces = [producers[name] for name in node.input]
        axis = attribute(node, "axis") % len(shapes[node.output[0]])
        sources = [piece.input[0] for piece in pieces]
        source_shapes = {tuple(shapes[name]) for name in sources}
        axes = [_unsqueeze_axes(piece, known) for piece in pieces]
        if len(source_shapes) != 1 or any(a is None or len(a) != 1 or a[0] % len(shapes[node.output[0]]) != axis for a in axes):
            continue
        (shape,) = source_shapes
        rank = len(shape)
        if rank == 0 or axis == rank:  # scalars, or a stack along a new last axis: left as it is
            continue
        build = Builder(model, default_opset(model))
        flat = build.concat(sources, axis=rank - 1)
        target = build.const(np.array([0] * (rank - 1) + [len(sources), shape[-1]], np.int64), "stack_shape")
        last = axis == rank - 1
        stacked = build.op("Reshape", [flat, target], "stack_reshape", output=node.output[0] if last else None)
        if not last:
            perm = list(range(axis)) + [rank - 1] + list(range(axis, rank - 1)) + [rank]
            build.op("Transpose", [stacked], "stack_transpose", output=node.output[0], perm=perm)
        build.replace(node)
    return build.result()
