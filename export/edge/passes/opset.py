"""Opset down to 9, the opset ONNX.js 0.1.8 resolves best.

ONNX.js resolves MaxPool only at opsets 1-9 and Clip/Pad up to 10, and reads Squeeze/Unsqueeze/
Split/ReduceSum axes, Slice bounds, Clip bounds and Pad amounts from attributes, as written
before opsets 10-13 moved them to inputs. onnx's version converter is tried first; it lacks
many down-adapters (e.g. Reshape 13→12), so otherwise each node is rewritten here: an operator
whose schema did not change since opset 9 is kept, one whose later versions only added types or
negative axes is kept with its axes made non-negative, and the input-to-attribute moves are
undone from constants. Anything else makes the pass fail (and the checker names it).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import defs, version_converter

from ...manifest import default_opset
from ...verify import Feeds, compare, onnxruntime_runner
from ..graph import attribute, constants, probe_shapes

TARGET = 9
# Later versions of these added types, optional inputs or attributes with a neutral default.
_SAME_MEANING = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "MatMul",
    "Reshape",
    "Transpose",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Neg",
    "Abs",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Pow",
    "Identity",
    "Cast",
    "Equal",
    "Less",
    "Greater",
    "Conv",
    "BatchNormalization",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Not",
    "And",
    "Or",
    "Expand",
    "Tile",
    "Shape",
    "Gemm",
    "MaxPool",
    "AveragePool",
    "Concat",
    "Flatten",
    "Gather",
    "Softmax",
    "LogSoftmax",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
    "ReduceLogSum",
    "ArgMax",
    "ArgMin",
    "Where",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Sign",
    "Erf",
    "HardSigmoid",
}
_AXIS_ATTRS = {
    "Concat": "axis",
    "Flatten": "axis",
    "Gather": "axis",
    "Softmax": "axis",
    "LogSoftmax": "axis",
    "ArgMax": "axis",
    "ArgMin": "axis",
    "Split": "axis",
}
_AXES_ATTRS = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceLogSum", "ReduceSum"}


class _Refused(Exception):
    pass


def _set(node: onnx.NodeProto, name: str, value) -> None:
    for index, entry in enumerate(node.attribute):
        if entry.name == name:
            del node.attribute[index]
            break
    node.attribute.append(onnx.helper.make_attribute(name, value))


def _const(known: dict[str, np.ndarray], node: onnx.NodeProto, index: int) -> np.ndarray | None:
    if len(node.input) <= index or not node.input[index]:
        return None
    if node.input[index] not in known:
        raise _Refused(f"{node.op_type} {node.name!r}: input {index} is not a constant")
    return known[node.input[index]]


def _rank_of(shapes: dict[str, tuple], node: onnx.NodeProto, output: bool = False) -> int:
    return len(shapes[node.output[0] if output else node.input[0]])


def _rewrite(node: onnx.NodeProto, opset: int, known: dict[str, np.ndarray], shapes: dict[str, tuple]) -> None:
    op = node.op_type
    since = defs.get_schema(op, opset).since_version
    if since <= TARGET:
        return
    if op == "Constant" and [entry.name for entry in node.attribute] == ["value"]:
        return  # later versions only added other ways to write the value
    if op in ("Squeeze", "Unsqueeze"):
        axes = _const(known, node, 1)
        axes = attribute(node, "axes") if axes is None else axes.tolist()
        rank = _rank_of(shapes, node, output=(op == "Unsqueeze"))
        if axes is None:
            raise _Refused(f"{op} without axes")
        _set(node, "axes", [int(a) % rank for a in axes])
        del node.input[1:]
    elif op == "Slice":
        starts, ends = _const(known, node, 1), _const(known, node, 2)
        axes, steps = _const(known, node, 3), _const(known, node, 4)
        if steps is not None and np.any(steps != 1):
            raise _Refused("Slice with steps")
        rank = _rank_of(shapes, node)
        axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in axes]
        del node.input[1:]
        _set(node, "starts", [int(v) for v in starts])
        _set(node, "ends", [int(v) for v in ends])
        _set(node, "axes", axes)
    elif op == "Split":
        sizes = _const(known, node, 1)
        if sizes is not None:
            _set(node, "split", [int(v) for v in sizes])
        del node.input[1:]
        _set(node, "axis", attribute(node, "axis", 0) % _rank_of(shapes, node))
    elif op == "Clip":
        low, high = _const(known, node, 1), _const(known, node, 2)
        del node.input[1:]
        if low is not None:
            _set(node, "min", float(low))
        if high is not None:
            _set(node, "max", float(high))
    elif op == "Pad":
        pads, value = _const(known, node, 1), _const(known, node, 2)
        del node.input[1:]
        _set(node, "pads", [int(v) for v in pads])
        if value is not None:
            _set(node, "value", float(value))
    elif op == "Dropout":
        node.op_type = "Identity"
        del node.input[1:], node.output[1:], node.attribute[:]
    elif op in _AXES_ATTRS:
        axes = _const(known, node, 1) if op == "ReduceSum" or opset >= 18 else None
        axes = attribute(node, "axes") if axes is None else axes.tolist()
        if attribute(node, "noop_with_empty_axes", 0) and not axes:  # with axes given the flag means nothing
            raise _Refused(f"{op} with noop_with_empty_axes")
        del node.input[1:]
        if axes is not None and len(axes):  # no axes: every axis, at opset 9 as at 18
            _set(node, "axes", [int(a) % _rank_of(shapes, node) for a in axes])
        for index, entry in enumerate(node.attribute):
            if entry.name == "noop_with_empty_axes":
                del node.attribute[index]
                break
    elif op in _SAME_MEANING:
        if op == "Reshape" and node.input[1] in known and 0 not in known[node.input[1]]:
            _set(node, "allowzero", 0)  # allowzero only changes what a 0 in the target shape means
        _check_same_meaning(node, opset, shapes)
    else:
        raise _Refused(f"{op}-{since} has no opset-{TARGET} form here")
    if op in _AXIS_ATTRS and op != "Split":
        axis = attribute(node, "axis", _default_axis(op, opset))
        rank = _rank_of(shapes, node)
        _set(node, "axis", int(axis) % (rank + (1 if op == "Flatten" else 0)) if rank else int(axis))


def _default_axis(op: str, opset: int) -> int:
    """The axis a node means when it has no `axis` attribute (Flatten: 1 at every opset)."""
    if op == "Flatten":
        return 1
    if op in ("Softmax", "LogSoftmax"):
        return 1 if opset < 13 else -1
    return 0


def _check_same_meaning(node: onnx.NodeProto, opset: int, shapes: dict[str, tuple]) -> None:
    op = node.op_type
    if op in ("Softmax", "LogSoftmax") and opset >= 13:
        rank = _rank_of(shapes, node)
        if attribute(node, "axis", -1) % rank != rank - 1:
            raise _Refused(f"{op}-13 over a non-last axis")
    if op in ("MaxPool", "AveragePool") and (attribute(node, "ceil_mode", 0) or any(d != 1 for d in attribute(node, "dilations", [1]))):
        raise _Refused(f"{op} with ceil_mode or dilations")
    if op == "MaxPool" and len([o for o in node.output if o]) > 1:
        raise _Refused("MaxPool with Indices")
    if op == "Reshape" and attribute(node, "allowzero", 0):
        raise _Refused("Reshape with allowzero")
    if op == "BatchNormalization" and (attribute(node, "training_mode", 0) or len([o for o in node.output if o]) > 1):
        raise _Refused("BatchNormalization in training mode")
    if op == "Gemm" and len(node.input) < 3:
        raise _Refused("Gemm without C")
    neutral = ["training_mode", "allowzero"] + (["ceil_mode", "dilations"] if op in ("MaxPool", "AveragePool") else [])
    for name in neutral:  # checked above to hold their default; opset 9 does not know them
        for index, entry in enumerate(node.attribute):
            if entry.name == name:
                del node.attribute[index]
                break


def _by_hand(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto:
    opset = default_opset(model)
    known = constants(model.graph)
    shapes = {name: value.shape for name, value in known.items()}  # e.g. a Gather from a constant table
    shapes.update(probe_shapes(model, sample))
    for node in model.graph.node:
        if node.domain in ("", "ai.onnx"):
            _rewrite(node, opset, known, shapes)
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = TARGET
    return model


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    if default_opset(model) <= TARGET:
        return None
    reference = onnxruntime_runner(model)
    ir_version = model.ir_version
    try:
        converted = version_converter.convert_version(model, TARGET)
        onnx.checker.check_model(converted)
        if compare(reference, onnxruntime_runner(converted), [sample]).passed:
            converted.ir_version = min(converted.ir_version, ir_version)
            return converted
    except Exception:  # noqa: BLE001 - many down-adapters are missing; rewrite by hand below
        pass
    try:
        return _by_hand(model, sample)
    except _Refused as refused:
        raise RuntimeError(f"cannot go to opset {TARGET}: {refused}") from None
