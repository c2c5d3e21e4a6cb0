"""int32 arithmetic written with the few operators ONNX.js 0.1.8 runs on int32.

`Cast(Equal(a, b))` over int32 becomes `Gather([1, 0], Abs(Sign(a − b)))`: a one-hot without
Equal or Cast (`run`); a Reshape of an int32 tensor that only inserts unit axes becomes an
Unsqueeze (`reshape_to_unsqueeze`), since ONNX.js's Reshape takes floats only.

ONNX.js 0.1.8 has Equal only on webgl and Cast on no backend, and its other operators refuse mixed
types, so an integer comparison can never become a float there. But Sign, Abs, Neg, Tile, Concat
and ReduceSum take int32 on its cpu backend (which its wasm backend falls back to for them: its own
Sub and Add take float32 only), and Gather returns its table's type. `a − b` is written as the
ReduceSum of `[a, −b]` stacked on a new last axis (both tiled to the broadcast shape: magika's
2048 × 257 int32s, twice, at run time). It may wrap, and so may `−b`, in ONNX.js as in
onnxruntime, but modulo 2³² it is still `a − b`, which is 0 exactly when `a == b` since
`|a − b| < 2³²`. So `Abs(Sign(a − b))` is 0 where `a == b` and 1 elsewhere, and gathering from
the table `[cast(true), cast(false)]` gives what the Cast gave, bit for bit. tf2onnx writes jax's
`one_hot` this way (magika's byte embedding), after a Reshape of the int32 input to `[N, L, 1]`.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, constants, probe_values


def _broadcast(build: Builder, name: str, shape: tuple[int, ...], to: tuple[int, ...]) -> str:
    """`name` tiled to `to` and given a new last axis, all with operators that take int32."""
    if len(shape) < len(to):
        name = build.unsqueeze(name, list(range(len(to) - len(shape))))
        shape = (1,) * (len(to) - len(shape)) + shape
    if shape != to:
        repeats = np.array([want // have for have, want in zip(shape, to)], np.int64)
        name = build.op("Tile", [name, build.const(repeats, "repeats")])
    return build.unsqueeze(name, [len(to)])


def _difference(build: Builder, a: str, b: str, values: dict[str, np.ndarray]) -> str:
    to = np.broadcast_shapes(values[a].shape, values[b].shape)
    stacked = [_broadcast(build, a, values[a].shape, to), _broadcast(build, build.op("Neg", [b]), values[b].shape, to)]
    pair = build.concat(stacked, axis=len(to))
    if build.opset >= 13:
        return build.op("ReduceSum", [pair, build.const(np.array([len(to)], np.int64), "axes")], "difference", keepdims=0)
    return build.op("ReduceSum", [pair], "difference", axes=[len(to)], keepdims=0)


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {value.name for value in model.graph.output}
    pairs = [
        (node, consumers[node.output[0]][0])
        for node in model.graph.node
        if node.op_type == "Equal"
        and node.output[0] not in outputs
        and [user.op_type for user in consumers.get(node.output[0], [])] == ["Cast"]
    ]
    if not pairs:
        return None
    values = {**constants(model.graph), **probe_values(model, sample)}
    build = Builder(model, default_opset(model))
    for equal, cast in pairs:
        if any(values[name].dtype != np.int32 for name in equal.input):
            continue
        target = helper.tensor_dtype_to_np_dtype(attribute(cast, "to", TensorProto.FLOAT))
        difference = _difference(build, equal.input[0], equal.input[1], values)
        unequal = build.op("Abs", [build.op("Sign", [difference], "sign")], "unequal")
        table = build.const(np.array([True, False]).astype(target), "equal_table")
        build.op("Gather", [table, unequal], "one_hot", output=cast.output[0], axis=0)
        build.replace(equal)
        model.graph.node.remove(cast)
    return build.result()


def _unit_axes(before: tuple[int, ...], after: tuple[int, ...]) -> list[int] | None:
    """The axes an Unsqueeze of `before` inserts to give `after`, if it can."""
    axes, kept = [], 0
    for axis, size in enumerate(after):
        if kept < len(before) and before[kept] == size:
            kept += 1
        elif size == 1:
            axes.append(axis)
        else:
            return None
    return axes if kept == len(before) and axes else None


def reshape_to_unsqueeze(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    reshapes = [node for node in model.graph.node if node.op_type == "Reshape"]
    if not reshapes:
        return None
    values = {**constants(model.graph), **probe_values(model, sample)}
    build = Builder(model, default_opset(model))
    for node in reshapes:
        data = values[node.input[0]]
        axes = _unit_axes(data.shape, values[node.output[0]].shape)
        if data.dtype != np.int32 or axes is None:
            continue
        build.unsqueeze(node.input[0], axes, output=node.output[0])
        build.replace(node)
    return build.result()
