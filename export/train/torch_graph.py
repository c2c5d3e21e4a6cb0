"""The trainable tail of an ONNX graph, re-run as a PyTorch function of its initializers.

The gradient of the training step comes from PyTorch's autodiff (`torch.func`), so the part of
the model that is trained has to be a torch function. Re-building it from the framework would
need one translation per framework; re-reading it from `model.onnx` needs one, and trains
exactly the graph that is served. Dense/MLP operators are here; layers with parameters
(convolutions, pools, normalisation, embeddings, LSTM/GRU) and the shape ops around them are in
torch_layers.py, whose docstring says what is covered and why not onnx2torch; any other operator
in the trained part is named in a one-line error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import UnsupportedModelError
from . import torch_control, torch_layers
from .subgraphs import subgraphs
from .torch_layers import attr, ints

if TYPE_CHECKING:
    import torch

Values = dict[str, "torch.Tensor"]


def _gemm(node, x, a, b, c=None):
    import torch

    a = a.transpose(-1, -2) if attr(node, "transA", 0) else a
    b = b.transpose(-1, -2) if attr(node, "transB", 0) else b
    out = torch.matmul(a, b) * attr(node, "alpha", 1.0)
    return out if c is None else out + c * attr(node, "beta", 1.0)


def _reshape(node, x, data, shape):
    target = ints(shape)
    if not attr(node, "allowzero", 0):
        target = [data.shape[i] if dim == 0 else dim for i, dim in enumerate(target)]
    return data.reshape(target)


def _flatten(node, x, data):
    axis = attr(node, "axis", 1) % (data.dim() or 1)
    return data.reshape(int(np.prod(data.shape[:axis], dtype=np.int64)), -1)


def _transpose(node, x, data):
    perm = attr(node, "perm") or list(reversed(range(data.dim())))
    return data.permute(*perm)


def _squeeze(node, x, data, axes=None):
    axes = attr(node, "axes") if axes is None else ints(axes)
    if axes is None:
        return data.squeeze()
    for axis in sorted((a % data.dim() for a in axes), reverse=True):
        data = data.squeeze(axis)
    return data


def _unsqueeze(node, x, data, axes=None):
    axes = attr(node, "axes") if axes is None else ints(axes)
    rank = data.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        data = data.unsqueeze(axis)
    return data


def _softmax_axis(node: onnx.NodeProto, opset: int, rank: int) -> int:
    axis = attr(node, "axis", -1 if opset >= 13 else 1) % rank
    if opset < 13 and axis != rank - 1:
        raise UnsupportedModelError(f"{node.op_type}-{opset} over axis {axis} of a rank-{rank} tensor (2-D coercion)")
    return axis


def _ops() -> dict[str, Callable[..., Any]]:
    import torch

    return {
        "Gemm": _gemm,
        "MatMul": lambda node, x, a, b: torch.matmul(a, b),
        "Add": lambda node, x, a, b: a + b,
        "Sub": lambda node, x, a, b: a - b,
        "Mul": lambda node, x, a, b: a * b,
        "Div": lambda node, x, a, b: a / b,
        "Relu": lambda node, x, a: torch.relu(a),
        "LeakyRelu": lambda node, x, a: torch.nn.functional.leaky_relu(a, attr(node, "alpha", 0.01)),
        "Sigmoid": lambda node, x, a: torch.sigmoid(a),
        "Tanh": lambda node, x, a: torch.tanh(a),
        "Softmax": lambda node, x, a: torch.softmax(a, _softmax_axis(node, x.opset, a.dim())),
        "LogSoftmax": lambda node, x, a: torch.log_softmax(a, _softmax_axis(node, x.opset, a.dim())),
        "Identity": lambda node, x, a: a,
        "Dropout": lambda node, x, a, *rest: a,  # inference mode: the step trains the served graph
        "Reshape": _reshape,
        "Flatten": _flatten,
        "Transpose": _transpose,
        "Squeeze": _squeeze,
        "Unsqueeze": _unsqueeze,
        **torch_layers.ops(),
        **torch_control.ops(),
    }


# The element-wise and shape ops evaluated here; torch_layers.ops() adds the layers (it imports torch,
# so the full set is only built where a step is built: the serving image has no torch).
_ELEMENTWISE_OPS = frozenset(
    [
        "Gemm",
        "MatMul",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Relu",
        "LeakyRelu",
        "Sigmoid",
        "Tanh",
        "Softmax",
        "LogSoftmax",
        "Identity",
        "Dropout",
        "Reshape",
        "Flatten",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
    ]
)


@functools.cache
def supported_ops() -> frozenset[str]:
    return _ELEMENTWISE_OPS | frozenset(torch_layers.ops()) | frozenset(torch_control.ops()) | frozenset(torch_control.SUBGRAPH_OPS)


def _all_nodes(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """The nodes and, recursively, the nodes of their subgraphs (a Loop's body)."""
    found = []
    for node in nodes:
        found.append(node)
        for graph in subgraphs(node):
            found += _all_nodes([n for n in graph.node if n.op_type != "Constant"])
    return found


@dataclass
class TorchTail:
    """Nodes of `model.onnx` (in graph order) evaluated by torch; `constants` are frozen initializers."""

    nodes: list[onnx.NodeProto]
    constants: dict[str, np.ndarray]
    opset: int

    def __post_init__(self) -> None:
        unsupported = sorted(
            {node.op_type for node in _all_nodes(self.nodes) if node.op_type not in supported_ops() or node.domain not in ("", "ai.onnx")}
        )
        if unsupported:
            raise UnsupportedModelError(
                f"the trainable part uses {', '.join(unsupported)}, which the training step cannot differentiate yet "
                f"(supported: {', '.join(sorted(supported_ops()))}); train fewer layers (--trainable head or last:N)"
            )

    def nested(self, nodes: list[onnx.NodeProto], constants: dict[str, np.ndarray]) -> TorchTail:
        """A subgraph's nodes (a Loop body) evaluated the same way."""
        return TorchTail(nodes, constants, self.opset)

    def __call__(self, values: Values) -> Values:
        """Evaluate every node; `values` holds the cut tensors and the parameters, by ONNX name."""
        import torch

        ops = _ops()
        known: Values = dict(values)
        for name, array in self.constants.items():
            if name not in known:
                known[name] = torch.from_numpy(np.array(array))
        for node in self.nodes:
            args = [known[name] if name else None for name in node.input]
            while args and args[-1] is None:
                args.pop()
            subgraph = torch_control.SUBGRAPH_OPS.get(node.op_type)
            result = subgraph(node, self, known, *args) if subgraph else ops[node.op_type](node, self, *args)
            if isinstance(result, tuple):
                known.update((name, value) for name, value in zip(node.output, result) if name)
            else:
                known[node.output[0]] = result
        return known


def tail_constants(model: onnx.ModelProto, nodes: list[onnx.NodeProto], exclude: set[str]) -> dict[str, np.ndarray]:
    """Initializers and Constant outputs the tail reads, except the parameters (`exclude`)."""
    wanted = {name for node in nodes for name in node.input} - exclude
    found = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer if init.name in wanted}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] in wanted:
            found[node.output[0]] = numpy_helper.to_array(attr(node, "value"))
    return found
