"""train.onnx = the frozen prefix of model.onnx (as exported, inference mode) + the step graph.

The prefix is cut out with `onnx.utils.Extractor`, its free batch axes fixed to the training
batch, and raised to the step's opset with onnx's version converter (its up-adapters are
complete for what converters emit; the down-adapters that the other direction needs are not:
Pow-15 and Reduce-18 have none). The two graphs are then joined on the cut tensors by hand
rather than with `onnx.compose.merge_models`, which renames either all or none of a graph's
names: here the step's inputs must keep the contract's names and only its internals are
prefixed, so no name of the prefix can clash.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import version_converter

from ..errors import ExportError, one_line
from ..manifest import default_opset, graph_inputs
from ..verify import Feeds, onnxruntime_runner
from .step import STEP_OPSET
from .subgraphs import reads

_STEP_PREFIX = "step/"


def _element_types(model: onnx.ModelProto, names: list[str]) -> dict[str, int]:
    """Element types shape inference finds for `names` (none when it cannot run on the graph)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - some converters' graphs do not infer; float32 is then assumed
        return {}
    wanted = set(names)
    return {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info if v.name in wanted and v.type.tensor_type.elem_type}


def prefix_model(model: onnx.ModelProto, cut: list[str]) -> onnx.ModelProto | None:
    """The part of `model` that computes the cut tensors that are not graph inputs; None if none.

    `onnx.utils.Extractor` needs value_info for every output, which shape inference does not give
    for all converters' graphs (a TorchScript export's free batch): the backward closure is taken
    here, and the outputs are typed of unknown shape (ONNX allows it; onnxruntime fills it): float32
    unless shape inference says otherwise (a Loop's condition is bool).
    """
    inputs = [value.name for value in graph_inputs(model)]
    computed = [name for name in cut if name not in inputs]
    if not computed:
        return None
    producers = {name: node for node in model.graph.node for name in node.output}
    needed, stack = set(), list(computed)
    while stack:
        name = stack.pop()
        node = producers.get(name)
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        stack.extend(n for n in reads(node) if n)
    nodes = [node for node in model.graph.node if id(node) in needed]
    read = {name for node in nodes for name in reads(node)}
    graph = onnx.helper.make_graph(
        nodes,
        "frozen_prefix",
        [value for value in graph_inputs(model) if value.name in read],
        [
            onnx.helper.make_tensor_value_info(name, _element_types(model, computed).get(name, onnx.TensorProto.FLOAT), None)
            for name in computed
        ],
        initializer=[init for init in model.graph.initializer if init.name in read],
    )
    prefix = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    prefix.ir_version = model.ir_version
    return prefix


def evaluate_cut(model: onnx.ModelProto, cut: list[str], feeds: Feeds) -> Feeds:
    """The cut tensors' values for `feeds` (batch-B model inputs), by running the prefix."""
    prefix = prefix_model(model, cut)
    values = {name: feeds[name] for name in cut if name in feeds}
    if prefix is not None:
        used = {value.name for value in prefix.graph.input}
        values.update(onnxruntime_runner(prefix)({k: v for k, v in feeds.items() if k in used}))
    return values


def _fix_batch(graph: onnx.GraphProto, names: set[str], batch: int) -> None:
    for value in graph.input:
        if value.name in names and value.type.tensor_type.shape.dim:
            first = value.type.tensor_type.shape.dim[0]
            if not first.HasField("dim_value"):
                first.Clear()
                first.dim_value = batch


def _rename_internals(step: onnx.ModelProto, keep: set[str]) -> None:
    """Prefix every value and node name of the step that is not one of its inputs or outputs."""

    def renamed(name: str) -> str:
        return name if not name or name in keep else _STEP_PREFIX + name

    graph = step.graph
    for init in graph.initializer:
        init.name = renamed(init.name)
    for node in graph.node:
        node.name = renamed(node.name) if node.name else node.name
        node.input[:] = [renamed(n) for n in node.input]
        node.output[:] = [renamed(n) for n in node.output]
    for value in graph.value_info:
        value.name = renamed(value.name)


def compose(model: onnx.ModelProto, step: onnx.ModelProto, cut: list[str], batch: int) -> onnx.ModelProto:
    """One graph taking raw model inputs where the step took cut tensors."""
    keep = {value.name for value in step.graph.input} | {value.name for value in step.graph.output}
    _rename_internals(step, keep)
    prefix = prefix_model(model, cut)
    model_inputs = [value.name for value in graph_inputs(model)]
    if prefix is None:
        _fix_batch(step.graph, set(model_inputs), batch)
        return step
    _fix_batch(prefix.graph, set(model_inputs), batch)
    if default_opset(prefix) < STEP_OPSET:
        try:
            prefix = version_converter.convert_version(prefix, STEP_OPSET)
        except Exception as error:
            raise ExportError(f"the frozen part of the model cannot be raised to opset {STEP_OPSET}: {one_line(error)}") from None
    computed = {value.name for value in prefix.graph.output}
    step_inputs = [value for value in step.graph.input if value.name not in computed]
    prefix_inputs = list(prefix.graph.input)
    graph = onnx.helper.make_graph(
        [*prefix.graph.node, *step.graph.node],
        "train_step",
        [*prefix_inputs, *(v for v in step_inputs if v.name not in {p.name for p in prefix_inputs})],
        list(step.graph.output),
        initializer=[*prefix.graph.initializer, *step.graph.initializer],
    )
    opsets = {entry.domain: entry.version for entry in prefix.opset_import}
    for entry in step.opset_import:
        opsets[entry.domain] = max(opsets.get(entry.domain, 0), entry.version)
    merged = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid(domain, version) for domain, version in opsets.items()],
        producer_name="onnx-edgecloud train step",
    )
    merged.ir_version = max(prefix.ir_version, step.ir_version, 8)
    merged.ir_version = min(merged.ir_version, 10)
    return merged


def order_inputs(model: onnx.ModelProto, names: list[str]) -> None:
    """Graph inputs in the contract's order (`names`), with nothing missing or extra."""
    by_name = {value.name: value for value in model.graph.input}
    if set(by_name) != set(names):
        raise ExportError(f"train.onnx has inputs {sorted(by_name)}, expected {sorted(names)}")
    ordered = [by_name[name] for name in names]
    del model.graph.input[:]
    model.graph.input.extend(ordered)


def batch_feeds(sample: Feeds, batch: int, rng: np.random.Generator, ranges: dict[str, tuple[int, int]] | None = None) -> Feeds:
    """Model inputs of batch `batch`, random around the sample's values (for tracing and parity);
    integer inputs named in `ranges` (token ids) are drawn uniformly from their [low, high]."""
    feeds = {}
    for name, array in sample.items():
        shape = (batch, *array.shape[1:])
        if ranges and name in ranges:
            low, high = ranges[name]
            feeds[name] = rng.integers(low, high, size=shape, endpoint=True).astype(array.dtype)
            continue
        scale = float(np.std(array)) or 1.0
        feeds[name] = rng.normal(float(np.mean(array)), scale, size=shape).astype(array.dtype)
    return feeds
