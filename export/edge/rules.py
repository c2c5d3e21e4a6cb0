"""Which nodes of a model ONNX.js 0.1.8 cannot run, per backend, from the rules kept as data.

The operator/opset table is `onnxjs_0.1.8_rules.json`, read from the released package's
`op-resolve-rules` (see its `source`). On top of the table come the semantic traps a table
cannot express, each seen in Chromium: inputs where ONNX.js reads attributes (Squeeze-13),
1-D convolutions and pools, Softmax-13 over a non-last axis (wrong numbers, no error), on cpu a
Conv over a batch that may hold more than one image (its `conv2d` convolves image 0 into every
slot's place and leaves the others zero: wrong numbers, no error; `conv-batch-as-height` removes
it where the height is 1), on webgl an Unsqueeze whose input a later MatMul reads (the shader
fails to compile), and integer tensors fed to operators that take floats only ("invalid inputs
detected" at run time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import onnx
from onnx import numpy_helper

from ..manifest import default_opset
from .graph import attribute

RULES_FILE = Path(__file__).with_name("onnxjs_0.1.8_rules.json")
BACKENDS = ("cpu", "wasm", "webgl")
# ONNX.js reads these from attributes; opset 13+ moved them to inputs, which it ignores.
_ATTRIBUTE_INPUT_OPS = {"Squeeze", "Unsqueeze", "Split", "ReduceSum"}
_ATTRIBUTE_INPUT_OPS_18 = {"ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceLogSum"}
_INT32_MAX = 2**31 - 1
_SPATIAL_OPS = {"Conv", "MaxPool", "AveragePool"}
# Operators whose ONNX.js input check takes floats only (lib/ops/reshape.js, transpose.js), and the
# wasm backend's binary operators, which take float32 only and shadow cpu's for it (wasm/op-resolve-rules.js).
_FLOAT_ONLY = {"Reshape", "Transpose"}
_WASM_FLOAT32_ONLY = {"Add", "Sub", "Mul", "Div", "PRelu"}
_FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE}
CONV_BATCH_ON_CPU = "the input's batch may exceed 1 and ONNX.js cpu convolves only the first image (images 1… come out zero), silently"
UNSQUEEZE_BEFORE_MATMUL = "webgl gives its input the unsqueezed texture layout, and a MatMul that reads that input later fails to compile"


@lru_cache(maxsize=1)
def rules() -> dict:
    """The ONNX.js 0.1.8 rule table (operator → opset selectors per backend)."""
    return json.loads(RULES_FILE.read_text())


def selector_matches(version: int, selector: str) -> bool:
    """ONNX.js's own `matchSelector` (lib/opset.ts): '7+', '7-10' or '11'."""
    if selector.endswith("+"):
        return int(selector[:-1]) <= version
    if "-" in selector:
        low, high = selector.split("-")
        return int(low) <= version <= int(high)
    return int(selector) == version


def backend_ops(backend: str) -> dict[str, list[str]]:
    table = rules()["backends"]
    ops = {op: list(selectors) for op, selectors in table[backend].items()}
    if backend == "wasm" and rules()["wasm_falls_back_to_cpu"]:
        for op, selectors in table["cpu"].items():
            ops[op] = sorted(set(ops.get(op, [])) | set(selectors))
    return ops


@dataclass(frozen=True)
class Blocker:
    """One node a backend cannot run, and why."""

    node: str
    op_type: str
    reason: str

    def __str__(self) -> str:
        return f"{self.op_type} ({self.reason})"


def _initializer_ranks(graph: onnx.GraphProto) -> dict[str, int]:
    return {init.name: len(init.dims) for init in graph.initializer}


def _semantic_blocker(node: onnx.NodeProto, opset: int, ranks: dict[str, int], value_ranks: dict[str, int]) -> str | None:
    real_inputs = [name for name in node.input if name]
    if node.op_type in _ATTRIBUTE_INPUT_OPS and opset >= 13 and len(real_inputs) > 1:
        return f"opset {opset} passes axes/split as an input; ONNX.js reads the attribute"
    if node.op_type in _ATTRIBUTE_INPUT_OPS_18 and opset >= 18 and len(real_inputs) > 1:
        return f"opset {opset} passes axes as an input; ONNX.js reads the attribute"
    if node.op_type == "Dropout" and len(real_inputs) > 1:
        return "Dropout with ratio/training inputs is refused when the graph loads"
    if node.op_type in _SPATIAL_OPS:
        kernel = attribute(node, "kernel_shape")
        weight_rank = ranks.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        data_rank = value_ranks.get(node.input[0])
        if (kernel is not None and len(kernel) == 1) or weight_rank == 3 or data_rank == 3:
            return "1-D convolution/pool: ONNX.js runs 2-D only"
    if node.op_type in ("Softmax", "LogSoftmax") and opset >= 13:
        axis = attribute(node, "axis", -1)
        rank = value_ranks.get(node.input[0])
        if axis != -1 and (rank is None or axis != rank - 1):
            return f"opset {opset} Softmax over axis {axis} (not the last): ONNX.js computes opset-12 semantics, silently wrong"
    return None


def _inferred_values(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shapes and types are a hint; unknown ones are handled by the callers
        inferred = model
    graph = inferred.graph
    return [*graph.input, *graph.value_info, *graph.output]


def _value_ranks(model: onnx.ModelProto, values: list[onnx.ValueInfoProto]) -> dict[str, int]:
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in values if v.type.tensor_type.HasField("shape")}
    ranks.update(_initializer_ranks(model.graph))
    return ranks


def _value_types(model: onnx.ModelProto, values: list[onnx.ValueInfoProto]) -> dict[str, int]:
    types = {v.name: v.type.tensor_type.elem_type for v in values if v.type.tensor_type.elem_type}
    types.update({init.name: init.data_type for init in model.graph.initializer})
    return types


def _type_blocker(node: onnx.NodeProto, backend: str, types: dict[str, int]) -> str | None:
    data = types.get(node.input[0]) if node.input else None
    if data is None or data in _FLOATS:
        return None
    kind = onnx.helper.tensor_dtype_to_np_dtype(data).name
    if node.op_type in _FLOAT_ONLY:
        return f"{kind} input: ONNX.js takes floats only"
    if backend == "wasm" and node.op_type in _WASM_FLOAT32_ONLY:
        return f"{kind} input: the wasm backend takes float32 only"
    return None


def _single_image(values: list[onnx.ValueInfoProto]) -> set[str]:
    """Names of the values whose leading (batch) dimension is statically 1."""
    single = set()
    for value in values:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
            single.add(value.name)
    return single


def _unsqueeze_before_matmul(graph: onnx.GraphProto) -> set[int]:
    """Indices of Unsqueeze nodes whose input a MatMul further down the node list reads (webgl only)."""
    last_matmul_read: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        if node.op_type == "MatMul":
            last_matmul_read.update((name, index) for name in node.input)
    return {
        index
        for index, node in enumerate(graph.node)
        if node.op_type == "Unsqueeze" and node.input and last_matmul_read.get(node.input[0], -1) > index
    }


def blockers(model: onnx.ModelProto, backend: str) -> list[Blocker]:
    """The nodes of `model` that ONNX.js 0.1.8 cannot run (or runs wrongly) on `backend`."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown ONNX.js backend {backend!r}; one of {BACKENDS}")
    opset = default_opset(model)
    table = backend_ops(backend)
    graph_level = rules()["graph_level_ops"]
    ranks = _initializer_ranks(model.graph)
    values = _inferred_values(model)
    value_ranks, value_types = _value_ranks(model, values), _value_types(model, values)
    single_image = _single_image(values) if backend == "cpu" else set()
    texture_traps = _unsqueeze_before_matmul(model.graph) if backend == "webgl" else set()
    found: list[Blocker] = []
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.INT64:
            constant = numpy_helper.to_array(init)
            if constant.size and (constant.max() > _INT32_MAX or constant.min() < -_INT32_MAX - 1):
                found.append(Blocker(init.name, "int64", "int64 constant outside the int32 range ONNX.js reads"))
    for index, node in enumerate(model.graph.node):
        if node.domain not in ("", "ai.onnx"):
            found.append(Blocker(node.name, node.op_type, f"operator domain {node.domain} is not supported"))
            continue
        semantic = _semantic_blocker(node, opset, ranks, value_ranks)
        semantic = semantic or (UNSQUEEZE_BEFORE_MATMUL if index in texture_traps else None) or _type_blocker(node, backend, value_types)
        if not semantic and backend == "cpu" and node.op_type == "Conv" and node.input[0] not in single_image:
            semantic = CONV_BATCH_ON_CPU
        if semantic:
            found.append(Blocker(node.name, node.op_type, semantic))
        elif node.op_type in graph_level:
            continue
        elif node.op_type not in table:
            found.append(Blocker(node.name, node.op_type, f"not implemented on {backend}"))
        elif not any(selector_matches(opset, selector) for selector in table[node.op_type]):
            found.append(Blocker(node.name, node.op_type, f"opset {opset} not resolved (only {', '.join(table[node.op_type])})"))
    return found


def blocker_summary(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Per backend, the distinct reasons ONNX.js cannot run the model (empty list: it can)."""
    summary = {}
    for backend in BACKENDS:
        summary[backend] = sorted({str(blocker) for blocker in blockers(model, backend)})
    return summary
