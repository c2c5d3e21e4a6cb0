"""Constant folding and shape simplification (onnxsim), then the batch-size plumbing made static.

Exporters compute Reshape targets and zero states from `Shape(input)` so the batch axis stays
free; ONNX.js has no Shape, Cast or Expand on its cpu backend. After onnxsim has folded what is
constant, a probe at two batch sizes tells which axes follow the batch: a Reshape target becomes
a constant with -1 on that axis, and an Expand of a constant becomes that constant with size 1
there (broadcasting downstream restores the batch). Dead nodes go.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...manifest import default_opset
from ...quiet import silenced
from ...verify import Feeds
from ..graph import Builder, batch_variant, constants, probe_shapes, remove_dead, topological_sort


def simplify(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    """onnxsim's constant folding and shape simplification; None if it changed nothing."""
    import onnxsim

    before = model.SerializeToString()
    with silenced("onnxsim"):
        simplified, ok = onnxsim.simplify(model, check_n=0)
    if not ok:
        raise RuntimeError("onnxsim could not check its result")
    simplified.ir_version = min(simplified.ir_version, model.ir_version)
    return None if simplified.SerializeToString() == before else simplified


def _free_axes(first: tuple[int, ...], second: tuple[int, ...]) -> list[int]:
    return [axis for axis, (a, b) in enumerate(zip(first, second)) if a != b]


def static_shapes(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    """Reshape targets and Expand-ed constants computed from the batch size → constants."""
    bigger = batch_variant(sample, model)
    one = probe_shapes(model, sample)
    other = probe_shapes(model, bigger) if bigger is not None else one
    known = constants(model.graph)
    outputs = {value.name for value in model.graph.output}
    build = Builder(model, default_opset(model))
    changed = False
    for node in list(model.graph.node):
        if node.op_type == "Reshape" and node.input[1] not in known:
            shape_a, shape_b = one[node.output[0]], other[node.output[0]]
            free = _free_axes(shape_a, shape_b)
            if len(free) > 1 or len(shape_a) != len(shape_b):
                continue
            target = np.array([-1 if axis in free else dim for axis, dim in enumerate(shape_a)], np.int64)
            node.input[1] = build.const(target, "shape")
            changed = True
        elif node.op_type == "Expand" and node.input[0] in known and node.output[0] not in outputs:
            shape_a, shape_b = one[node.output[0]], other[node.output[0]]
            static = tuple(1 if axis in _free_axes(shape_a, shape_b) else dim for axis, dim in enumerate(shape_a))
            value = np.broadcast_to(known[node.input[0]], static).copy()
            node.op_type = "Identity"
            del node.input[:]
            node.input.append(build.const(value, "expanded"))
            changed = True
    if not changed:
        return None
    remove_dead(model)
    topological_sort(model)
    return model
