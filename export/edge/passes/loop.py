"""Loop with a constant trip count unrolled: its body inlined once per iteration.

tf2onnx writes Keras GRU and SimpleRNN layers as a `Loop` over time steps; ONNX.js has no Loop.
For the signature's fixed sequence length the trip count is a constant, so the body can be
copied that many times (iteration number as a constant, loop-carried values chained, scan
outputs stacked with Concat). The early-exit condition is not modelled: if a loop would stop
early, the unrolled graph differs and the lowering's parity check rejects this pass.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, constants, fixed_except_batch, topological_sort

MAX_TRIP_COUNT = 1024


def _has_subgraph(graph: onnx.GraphProto) -> bool:
    return any(entry.type == onnx.AttributeProto.GRAPH for node in graph.node for entry in node.attribute)


def _unroll(model: onnx.ModelProto, node: onnx.NodeProto, trips: int) -> None:
    body = next(entry.g for entry in node.attribute if entry.name == "body")
    build = Builder(model, default_opset(model))
    carried_count = len(node.input) - 2
    shared = {init.name: build.const(numpy_helper.to_array(init), "loop_const") for init in body.initializer}
    carried = list(node.input[2:])
    cond = node.input[1]
    scans: list[list[str]] = [[] for _ in range(len(body.output) - 1 - carried_count)]
    for i in range(trips):
        names = dict(shared)
        names[body.input[0].name] = build.const(np.array(i, np.int64), "iter")
        names[body.input[1].name] = cond
        names.update({value.name: outer for value, outer in zip(body.input[2:], carried)})
        for inner in body.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(inner)
            copy.name = build.names.fresh(f"{inner.name or inner.op_type}_t{i}")
            for k, name in enumerate(inner.input):
                copy.input[k] = names.get(name, name)
            for k, name in enumerate(inner.output):
                if name:
                    names[name] = copy.output[k] = build.names.fresh(f"{name}_t{i}")
            build.nodes.append(copy)
        result = [names.get(value.name, value.name) for value in body.output]
        cond, carried = result[0], result[1 : 1 + carried_count]
        for k, value in enumerate(result[1 + carried_count :]):
            scans[k].append(build.unsqueeze(value, [0]))
    for output, value in zip(node.output[:carried_count], carried):
        if output:
            build.op("Identity", [value], output=output)
    for output, stacked in zip(node.output[carried_count:], scans):
        if output:
            build.op("Concat", stacked, output=output, axis=0)
    build.replace(node)


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    if not fixed_except_batch(model):
        return None
    known = constants(model.graph)
    changed = False
    for node in [n for n in model.graph.node if n.op_type == "Loop" and n.domain in ("", "ai.onnx")]:
        body = next(entry.g for entry in node.attribute if entry.name == "body")
        trips = known.get(node.input[0]) if node.input[0] else None
        if trips is None or trips.size != 1 or not 0 < int(trips) <= MAX_TRIP_COUNT or _has_subgraph(body):
            continue
        _unroll(model, node, int(trips))
        changed = True
    if not changed:
        return None
    topological_sort(model)
    return model
