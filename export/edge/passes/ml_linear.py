"""scikit-learn's linear `ai.onnx.ml` operators rewritten as standard ONNX ops ONNX.js runs.

ONNX.js knows no `ai.onnx.ml` operator, but the common linear ones are plain arithmetic:
Scaler → Sub, Mul; LinearRegressor → Gemm; LinearClassifier → Gemm, then ArgMax of the raw
scores for the label (as onnxruntime picks it) and Softmax/Sigmoid for the scores; Normalizer
L1/L2 → Div by ReduceSum(Abs)/Sqrt(ReduceSum(x*x)). Only forms whose meaning is kept exactly
are rewritten; anything else (string labels, the one-score binary form, PROBIT/SOFTMAX_ZERO,
non-float inputs) is left in place, so the rule check keeps naming it and the model stays on
onnxruntime-web. No Cast is written (ONNX.js has none): the label stays int64 in the file, as
in the cloud model — ArgMax's int64 output, or a Gather from the int64 class labels — and
ONNX.js hands it back as int32 values, which `edgecloud verify` compares exactly.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, probe_values, topological_sort

ML_DOMAIN = "ai.onnx.ml"
_SCORE_TRANSFORMS = {"NONE", "SOFTMAX", "LOGISTIC"}


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    targets = [node for node in model.graph.node if node.domain == ML_DOMAIN]
    if not targets:
        return None
    values = probe_values(model, sample)
    opset = default_opset(model)
    changed = False
    for node in targets:
        value = values.get(node.input[0])
        if value is None or value.dtype != np.float32 or value.ndim != 2:
            continue  # integer/double inputs would need a Cast; 1-D inputs mean one row to onnxruntime
        build = Builder(model, opset)
        rewrite = _REWRITES.get(node.op_type)
        if rewrite is not None and rewrite(node, build, value.shape[1]):
            build.replace(node)
            changed = True
    if not changed:
        return None
    if not any(node.domain == ML_DOMAIN for node in model.graph.node):
        kept = [entry for entry in model.opset_import if entry.domain != ML_DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(kept)
    topological_sort(model)
    return model


def _floats(node: onnx.NodeProto, name: str) -> np.ndarray | None:
    values = attribute(node, name)
    return None if values is None else np.asarray(values, dtype=np.float32)


def _text(node: onnx.NodeProto, name: str, default: str) -> str:
    value = attribute(node, name, default)
    return value.decode() if isinstance(value, bytes) else value


def _output(node: onnx.NodeProto, index: int) -> str | None:
    return node.output[index] if len(node.output) > index and node.output[index] else None


def _scaler(node: onnx.NodeProto, build: Builder, features: int) -> bool:
    """Y = (X - offset) * scale; each a single value or one per feature."""
    offset = _floats(node, "offset")
    scale = _floats(node, "scale")
    offset = np.zeros(1, np.float32) if offset is None else offset
    scale = np.ones(1, np.float32) if scale is None else scale
    if offset.size not in (1, features) or scale.size not in (1, features):
        return False
    shifted = build.op("Sub", [node.input[0], build.const(offset, "scaler_offset")], "scaler_sub")
    build.op("Mul", [shifted, build.const(scale, "scaler_scale")], "scaler_mul", output=node.output[0])
    return True


def _gemm(node: onnx.NodeProto, build: Builder, features: int, targets: int, output: str | None = None) -> str | None:
    """X · coefficientsᵀ + intercepts, as onnxruntime's own kernels compute it (one Gemm)."""
    coefficients = _floats(node, "coefficients")
    intercepts = _floats(node, "intercepts")
    intercepts = np.zeros(targets, np.float32) if intercepts is None or intercepts.size == 0 else intercepts
    if coefficients is None or coefficients.size != targets * features or intercepts.size != targets:
        return None
    weights = build.const(coefficients.reshape(targets, features), "linear_coefficients")
    bias = build.const(intercepts, "linear_intercepts")
    return build.op("Gemm", [node.input[0], weights, bias], "linear_gemm", output=output, transB=1)


def _linear_regressor(node: onnx.NodeProto, build: Builder, features: int) -> bool:
    if _text(node, "post_transform", "NONE") != "NONE":
        return False
    return _gemm(node, build, features, int(attribute(node, "targets", 1)), output=node.output[0]) is not None


def _linear_classifier(node: onnx.NodeProto, build: Builder, features: int) -> bool:
    """Several classes only: onnxruntime's label is the class of the largest raw score (first on ties)."""
    labels = attribute(node, "classlabels_ints")
    intercepts = attribute(node, "intercepts") or []
    transform = _text(node, "post_transform", "NONE")
    if not labels or len(intercepts) < 2 or len(labels) != len(intercepts) or transform not in _SCORE_TRANSFORMS:
        return False
    label_out, scores_out = _output(node, 0), _output(node, 1)
    scores = _gemm(node, build, features, len(labels), output=scores_out if transform == "NONE" else None)
    if scores is None:
        return False
    if label_out is not None:
        if list(labels) == list(range(len(labels))):
            build.op("ArgMax", [scores], "label_argmax", output=label_out, axis=1, keepdims=0)
        else:
            index = build.op("ArgMax", [scores], "label_argmax", axis=1, keepdims=0)
            table = build.const(np.asarray(labels, np.int64), "class_labels")
            build.op("Gather", [table, index], "label_gather", output=label_out, axis=0)
    if scores_out is not None and transform != "NONE":
        op = "Softmax" if transform == "SOFTMAX" else "Sigmoid"
        build.op(op, [scores], f"scores_{op.lower()}", output=scores_out, **({"axis": 1} if op == "Softmax" else {}))
    return True


def _normalizer(node: onnx.NodeProto, build: Builder, features: int) -> bool:
    """Each row divided by its L1 or L2 norm."""
    norm = _text(node, "norm", "MAX")
    if norm not in ("L1", "L2"):
        return False
    x = node.input[0]
    if norm == "L1":
        total = _reduce_sum(build, build.op("Abs", [x], "norm_abs"))
    else:
        total = build.op("Sqrt", [_reduce_sum(build, build.op("Mul", [x, x], "norm_square"))], "norm_sqrt")
    build.op("Div", [x, total], "norm_div", output=node.output[0])
    return True


def _reduce_sum(build: Builder, value: str) -> str:
    if build.opset >= 13:
        return build.op("ReduceSum", [value, build.const(np.array([1], np.int64), "axes")], "norm_sum", keepdims=1)
    return build.op("ReduceSum", [value], "norm_sum", axes=[1], keepdims=1)


_REWRITES = {
    "Scaler": _scaler,
    "LinearRegressor": _linear_regressor,
    "LinearClassifier": _linear_classifier,
    "Normalizer": _normalizer,
}
