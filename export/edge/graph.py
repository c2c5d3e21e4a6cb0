"""Small graph-editing helpers the lowering passes share (names, constants, dead nodes, probing)."""

from __future__ import annotations

import itertools
from typing import Iterable

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from ..verify import Feeds


class Names:
    """Fresh value/node names that clash with nothing already in the model."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.taken = set(all_value_names(model.graph)) | {node.name for node in model.graph.node}
        self._counter = itertools.count()

    def fresh(self, base: str) -> str:
        while True:
            name = f"{base}__edge{next(self._counter)}"
            if name not in self.taken:
                self.taken.add(name)
                return name


def all_value_names(graph: onnx.GraphProto) -> Iterable[str]:
    yield from (value.name for value in graph.input)
    yield from (init.name for init in graph.initializer)
    for node in graph.node:
        yield from node.input
        yield from node.output


def constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and Constant-node outputs as numpy arrays."""
    found = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


def attribute(node: onnx.NodeProto, name: str, default=None):
    for entry in node.attribute:
        if entry.name == name:
            return onnx.helper.get_attribute_value(entry)
    return default


def add_constant(model: onnx.ModelProto, names: Names, base: str, value: np.ndarray) -> str:
    name = names.fresh(base)
    model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return name


def remove_dead(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop nodes and initializers nothing needs for the graph outputs."""
    graph = model.graph
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(output in needed for output in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
            for sub in _subgraphs(node):
                needed.update(_outer_references(sub))
    del graph.node[:]
    graph.node.extend(reversed(kept))
    live_inits = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live_inits)
    live_info = [value for value in graph.value_info if value.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(live_info)
    return model


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    return [entry.g for entry in node.attribute if entry.type == onnx.AttributeProto.GRAPH]


def _outer_references(graph: onnx.GraphProto) -> set[str]:
    local = {value.name for value in graph.input} | {init.name for init in graph.initializer}
    for node in graph.node:
        local.update(node.output)
    used = set()
    for node in graph.node:
        used.update(name for name in node.input if name)
        for sub in _subgraphs(node):
            used.update(_outer_references(sub))
    used.update(value.name for value in graph.output)
    return used - local


def topological_sort(model: onnx.ModelProto) -> None:
    """Reorder nodes so every input is produced before use (passes append freely)."""
    graph = model.graph
    ready = {value.name for value in graph.input} | {init.name for init in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        progressed = False
        rest = []
        for node in pending:
            needs = set(node.input)
            for sub in _subgraphs(node):
                needs |= _outer_references(sub)
            if needs <= ready:
                ordered.append(node)
                ready.update(node.output)
                progressed = True
            else:
                rest.append(node)
        if not progressed:
            raise ValueError("graph has a cycle or a missing value")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def batch_variant(sample: Feeds, model: onnx.ModelProto, size: int = 3) -> Feeds | None:
    """The sample repeated along a free first axis, so a probe can tell batch dims from fixed ones."""
    free_first = set()
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            free_first.add(value.name)
    if not free_first or not set(sample) & free_first:
        return None
    return {name: np.concatenate([array] * size, axis=0) if name in free_first else array for name, array in sample.items()}


def probe_shapes(model: onnx.ModelProto, feeds: Feeds) -> dict[str, tuple[int, ...]]:
    """Every top-level value's concrete shape when the model runs on `feeds` (onnxruntime)."""
    return {name: tuple(array.shape) for name, array in probe_values(model, feeds).items()}


def probe_values(model: onnx.ModelProto, feeds: Feeds) -> dict[str, np.ndarray]:
    """Every top-level value when the model runs on `feeds` (onnxruntime): shapes and dtypes
    even where onnx's shape inference knows none (e.g. after `ai.onnx.ml` operators)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {output.name for output in probe.graph.output}
    inputs = {value.name for value in probe.graph.input}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in existing and name not in inputs:
                probe.graph.output.append(onnx.ValueInfoProto(name=name))
                existing.add(name)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    values = {name: np.asarray(value) for name, value in zip(names, session.run(names, feeds))}
    values.update({name: np.asarray(array) for name, array in feeds.items()})
    return values


class Builder:
    """Appends nodes to a model, writing ops in the form its opset expects (axes as input or attribute)."""

    def __init__(self, model: onnx.ModelProto, opset: int) -> None:
        self.model = model
        self.opset = opset
        self.names = Names(model)
        self.nodes: list[onnx.NodeProto] = []
        self.replaced = 0

    def const(self, value: np.ndarray, base: str = "const") -> str:
        return add_constant(self.model, self.names, base, np.asarray(value))

    def op(self, op_type: str, inputs: list[str], base: str = "", output: str | None = None, **attrs) -> str:
        output = output or self.names.fresh(base or op_type.lower())
        self.nodes.append(onnx.helper.make_node(op_type, inputs, [output], name=self.names.fresh(f"{base or op_type}_node"), **attrs))
        return output

    def unsqueeze(self, value: str, axes: list[int], output: str | None = None) -> str:
        if self.opset >= 13:
            return self.op("Unsqueeze", [value, self.const(np.array(axes, np.int64), "axes")], output=output)
        return self.op("Unsqueeze", [value], output=output, axes=axes)

    def squeeze(self, value: str, axes: list[int], output: str | None = None) -> str:
        if self.opset >= 13:
            return self.op("Squeeze", [value, self.const(np.array(axes, np.int64), "axes")], output=output)
        return self.op("Squeeze", [value], output=output, axes=axes)

    def slice(self, value: str, axis: int, start: int, end: int, output: str | None = None) -> str:
        if self.opset >= 10:
            bounds = [self.const(np.array([v], np.int64), n) for v, n in ((start, "starts"), (end, "ends"), (axis, "axes"))]
            return self.op("Slice", [value, *bounds], output=output)
        return self.op("Slice", [value], output=output, axes=[axis], starts=[start], ends=[end])

    def concat(self, values: list[str], axis: int, output: str | None = None) -> str:
        if len(values) == 1 and output is None:
            return values[0]
        return self.op("Concat", values, output=output, axis=axis)

    def replace(self, old: onnx.NodeProto) -> None:
        """Put the built nodes where `old` was; the graph is re-sorted afterwards."""
        graph = self.model.graph
        index = list(graph.node).index(old)
        graph.node.remove(old)
        for offset, node in enumerate(self.nodes):
            graph.node.insert(index + offset, node)
        self.nodes = []
        self.replaced += 1

    def result(self) -> onnx.ModelProto | None:
        """The end of a pass: the model, re-sorted, when a node was replaced; None (nothing applied) otherwise."""
        if not self.replaced:
            return None
        topological_sort(self.model)
        return self.model


def fixed_except_batch(model: onnx.ModelProto) -> bool:
    """True when every graph input is fixed but for its first (batch) axis: lengths can be unrolled."""
    initializers = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim[1:]
        if any(not dim.HasField("dim_value") for dim in dims):
            return False
    return True
