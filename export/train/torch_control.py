"""ONNX Loop bodies run as a torch loop over their iterations (for torch_graph), and the comparisons they use.

tf2onnx turns a Keras recurrent layer it cannot rewrite into the ONNX GRU/LSTM op (Keras 3's
GRU with `reset_after=True`, the default, and its Bidirectional GRU) into the TensorFlow
`while` loop as is: an ONNX `Loop` whose body is one time step (Gather the step's input from the
outer sequence, MatMul/Add/Split/Slice/Sigmoid/Tanh/Mul, and the counter/condition arithmetic:
Add, Cast, Less, And) and whose loop-carried values are the hidden state and the layer's
variables. Here the body runs once per iteration through the same op translation as the main
graph (any body built of ops torch_graph covers, reading outer-scope tensors as ONNX allows);
the trip count and the condition are evaluated, so the traced step is the loop unrolled, as
torch_layers unrolls the GRU/LSTM ops. Covered: Loop with or without a trip count or condition,
loop-carried values and scan outputs (stacked on a new first axis), bodies nested in bodies.
ReverseSequence (before a Bidirectional's backward Loop) is covered over full-length sequences.
Not covered, each one error naming it: Scan, If, ReverseSequence over shorter sequences, and any
body op the step cannot differentiate.
"""

from __future__ import annotations

from typing import Any

import onnx
from onnx import numpy_helper

from .torch_layers import attr, refuse

# `tail` below is torch_graph's TorchTail (not imported: torch_graph imports this module).


def body_constants(graph: onnx.GraphProto) -> dict[str, Any]:
    """A body's initializers and Constant outputs (as numpy), which its nodes read by name."""
    found = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            found[node.output[0]] = numpy_helper.to_array(attr(node, "value"))
    return found


def loop(node: onnx.NodeProto, tail: Any, scope: dict[str, Any], trip_count=None, condition=None, *carried) -> tuple:
    """ONNX Loop: (final loop-carried values…, scan outputs stacked over iterations…)."""
    import torch

    body = attr(node, "body")
    inner = tail.nested([n for n in body.node if n.op_type != "Constant"], body_constants(body))
    names = [value.name for value in body.input]
    results = [value.name for value in body.output]
    count = len(carried)
    limit = int(trip_count) if trip_count is not None else None
    going = bool(condition) if condition is not None else True
    carried = list(carried)
    scans: list[list[Any]] = [[] for _ in results[1 + count :]]
    iteration = 0
    while going and (limit is None or iteration < limit):
        values = {**scope, names[0]: torch.tensor(iteration, dtype=torch.int64), names[1]: torch.tensor(going)}
        values.update(zip(names[2:], carried))
        known = inner(values)
        going = bool(known[results[0]])
        carried = [known[name] for name in results[1 : 1 + count]]
        for found, name in zip(scans, results[1 + count :]):
            found.append(known[name])
        iteration += 1
    return (*carried, *(torch.stack(found) for found in scans))


def reverse_sequence(node: onnx.NodeProto, tail: Any, x, lengths):
    """ReverseSequence over full-length sequences (what tf2onnx puts before a Bidirectional's backward
    Loop): the time axis flipped. Shorter sequences are refused: they would need a per-row reversal."""
    import torch

    time_axis = attr(node, "time_axis", 0)
    if not _tracing():  # make_fx cannot read values; build.py runs the tail eagerly (and checks) before the trace
        if int(lengths.min()) != int(lengths.max()) or int(lengths.max()) != x.shape[time_axis]:
            raise refuse(node, "sequences shorter than the time axis")
    return torch.flip(x, dims=[time_axis])


def _tracing() -> bool:
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    return get_proxy_mode() is not None


def ops() -> dict[str, Any]:
    """Comparisons and logic a loop's counter and condition use (no gradient flows through them), and
    ReverseSequence."""
    import torch

    return {
        "ReverseSequence": reverse_sequence,
        "Less": lambda node, tail, a, b: torch.lt(a, b),
        "LessOrEqual": lambda node, tail, a, b: torch.le(a, b),
        "Greater": lambda node, tail, a, b: torch.gt(a, b),
        "GreaterOrEqual": lambda node, tail, a, b: torch.ge(a, b),
        "Equal": lambda node, tail, a, b: torch.eq(a, b),
        "And": lambda node, tail, a, b: torch.logical_and(a, b),
        "Or": lambda node, tail, a, b: torch.logical_or(a, b),
        "Not": lambda node, tail, a: torch.logical_not(a),
    }


SUBGRAPH_OPS = {"Loop": loop}
