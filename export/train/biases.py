"""Put back the zero biases a converter folded away, so a trainable model keeps every framework variable.

tf2onnx drops a Dense/Conv bias that is all zeros (a fresh layer, or one trained to zero): the
layer's MatMul/Conv then has no bias tensor in model.onnx, while the framework's optimizer moves
that bias. Before a trainable model is written, each such bias is added back as an initializer
(named after the framework variable): a bias input on Gemm/Conv/ConvTranspose, an Add after a
MatMul. Zero changes no prediction; the step then trains it and the parity reference, which
trains every variable of the chosen layers (reference.complete), agrees with it. Only 1-D zero
variables of a layer whose kernel is found in the graph are restored; anything else a converter
rewrote is left for reference.complete to name.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ExportError
from .reference import Variable, match

BIASED = ("MatMul", "Gemm", "Conv", "ConvTranspose")


def _output_channels(node: onnx.NodeProto, weight: np.ndarray) -> int:
    if node.op_type == "MatMul":
        return int(weight.shape[-1])
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return int(weight.shape[0] if trans_b else weight.shape[1])
    if node.op_type == "Conv":
        return int(weight.shape[0])
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    return int(weight.shape[1] * group)


def unique_name(model: onnx.ModelProto, wanted: str) -> str:
    taken = {i.name for i in model.graph.initializer} | {o for n in model.graph.node for o in n.output}
    name, count = wanted, 1
    while name in taken:
        count += 1
        name = f"{wanted}_{count}"
    return name


def restore_zero_biases(model: onnx.ModelProto, variables: list[Variable]) -> list[str]:
    """Add each folded zero bias back to `model` (in place); returns the framework keys restored."""
    zero = [v for v in variables if v.value.ndim == 1 and not np.any(v.value)]
    if not zero:
        return []
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    restored = []
    for node in list(model.graph.node):
        if node.op_type not in BIASED or node.domain not in ("", "ai.onnx"):
            continue
        weight_name = node.input[0 if node.input[0] in weights else 1] if len(node.input) > 1 else ""
        if weight_name not in weights or (node.op_type != "MatMul" and len(node.input) > 2 and node.input[2]):
            continue
        after = consumers.get(node.output[0], [])
        if node.op_type == "MatMul" and len(after) == 1 and after[0].op_type == "Add":
            continue  # it has its bias
        kernel = [v for v in variables if v.value.ndim >= 2]
        try:
            key = match({weight_name: weights[weight_name]}, kernel)[weight_name].key
        except ExportError:  # no framework kernel (or no single one) for this weight: nothing to restore here
            continue
        layer = next(v.layer for v in kernel if v.key == key)
        channels = _output_channels(node, weights[weight_name])
        bias = next((v for v in zero if v.layer == layer and v.value.shape == (channels,)), None)
        if bias is None or bias.key in restored:
            continue
        name = unique_name(model, re.sub(r"[^A-Za-z0-9_./]", "_", bias.key))
        model.graph.initializer.append(numpy_helper.from_array(np.zeros(channels, np.float32), name))
        if node.op_type == "MatMul":
            product = unique_name(model, f"{node.output[0]}/without_bias")
            index = list(model.graph.node).index(node)
            add = helper.make_node("Add", [product, name], [node.output[0]], name=unique_name(model, f"{name}/Add"))
            node.output[0] = product
            model.graph.node.insert(index + 1, add)
        else:
            while len(node.input) < 2:
                node.input.append("")
            if len(node.input) == 2:
                node.input.append(name)
            else:
                node.input[2] = name
        restored.append(bias.key)
    return restored
