"""Renaming graph outputs so clients see the names the user gave, not an exporter's."""

from __future__ import annotations

from typing import Sequence

import onnx


def rename_outputs(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """Rename the graph outputs in order; skipped when names clash or do not line up."""
    outputs = list(model.graph.output)
    if len(names) != len(outputs) or len(set(names)) != len(names):
        return model
    taken = {value for node in model.graph.node for value in (*node.input, *node.output)}
    taken |= {value.name for value in model.graph.input} | {init.name for init in model.graph.initializer}
    mapping = {}
    for output, new in zip(outputs, names):
        if output.name == new:
            continue
        if new in taken:
            return model
        mapping[output.name] = new
    for node in model.graph.node:
        for i, value in enumerate(node.output):
            if value in mapping:
                node.output[i] = mapping[value]
        for i, value in enumerate(node.input):
            if value in mapping:
                node.input[i] = mapping[value]
    for output in model.graph.output:
        if output.name in mapping:
            output.name = mapping[output.name]
    return model
