"""Which initializers of `model.onnx` a training step updates, and where that cuts the graph.

A *layer* is a node with float initializers in its parameter slots (`PARAMETER_SLOTS`): Gemm, a
MatMul on a weight (with the bias Add right after it), Conv and ConvTranspose (with a bias Add
after a bias-less one), BatchNormalization (scale and bias; the running statistics stay frozen),
LayerNormalization (or its scale Mul and bias Add where an exporter below opset 17 spells it
out), Gather on an embedding table, LSTM and GRU (W, R, B), and a Loop (a recurrent
layer tf2onnx left as TensorFlow's while loop: the float initializers it carries or its body reads,
see torch_control.py). `head` is the last
Gemm/MatMul layer when it feeds a graph output through at most one activation; `last:N` the last
N layers; `all` every layer. Whether those are all the framework's variables is checked against
the framework (reference.py), not here: a converter may have folded one away. The nodes that
depend on a trainable initializer form the *tail* (re-run in torch); everything else that the
tail reads comes from the frozen *prefix* (kept as ONNX, in inference mode), through *cut*
tensors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import BadInputError, UnsupportedModelError
from .subgraphs import reads

CHOICES = ("head", "last:N", "all", "none")
ACTIVATIONS = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Identity"}
_LAST = re.compile(r"last:([1-9][0-9]*)")


@dataclass
class Layer:
    weight_node: onnx.NodeProto
    parameters: list[str]  # initializer names: weight first, then bias if any
    position: int  # index of the weight node in graph order


@dataclass
class Split:
    """The trainable part of a model: parameters, the tail's nodes, and the tensors cut from the prefix."""

    spec: str
    parameters: list[str]
    tail: list[onnx.NodeProto]
    cut: list[str]  # tensors the tail reads that the prefix (or a graph input) computes
    outputs: list[str]  # graph outputs that depend on a parameter (the ones trained on)
    notes: list[str] = field(default_factory=list)


def check_spec(spec: str | None) -> str | None:
    """Validate a --trainable value before any slow work; None means 'decide from the model'."""
    if spec is None or spec in ("head", "all", "none") or _LAST.fullmatch(str(spec)):
        return spec
    raise BadInputError(f"--trainable {spec!r}: choose one of head, last:N (N >= 1), all, none")


def _float_initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in model.graph.initializer if init.data_type == onnx.TensorProto.FLOAT}


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    found: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


# op → the input positions that hold trainable parameters (BatchNormalization's mean and variance
# are inputs 3 and 4: frozen, as the step runs in inference mode).
PARAMETER_SLOTS = {
    "Gemm": (1, 2),
    "MatMul": (0, 1),
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "BatchNormalization": (1, 2),
    "LayerNormalization": (1, 2),
    "Gather": (0,),
    "LSTM": (1, 2, 3),
    "GRU": (1, 2, 3),
}
DENSE = ("Gemm", "MatMul")
_BIAS_AFTER = ("MatMul", "Conv", "ConvTranspose")
RECURRENT = ("LSTM", "GRU")
_LAYOUT = ("Squeeze", "Unsqueeze", "Reshape", "Transpose", "Identity")


def _spelt_out_layer_norm(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto], floats: dict[str, onnx.TensorProto]) -> bool:
    """The scale Mul of a LayerNorm as exporters spell it below opset 17 (no LayerNormalization op):
    `(x - mean) / Sqrt(var + eps) * weight (+ bias)`; its weight (a vector, never a scalar constant)
    and bias are the layer's parameters."""
    if node.op_type != "Mul" or not any(name in floats and int(np.prod(floats[name].dims)) > 1 for name in node.input):
        return False
    for name in node.input:
        divide = producers.get(name)
        root = producers.get(divide.input[1]) if divide is not None and divide.op_type == "Div" else None
        if root is not None and root.op_type == "Sqrt":
            return True
    return False


def concat_parts(name: str, producers: dict[str, onnx.NodeProto]) -> list[str]:
    """The tensors a chain of Concats joins into `name` (a recurrent parameter split per direction and half)."""
    node = producers.get(name)
    if node is None or node.op_type != "Concat":
        return [name]
    return [part for joined in node.input for part in concat_parts(joined, producers)]


def layers(model: onnx.ModelProto) -> list[Layer]:
    """Nodes with parameters (see PARAMETER_SLOTS; + the bias Add after a MatMul, a bias-less Conv or a
    spelt-out LayerNorm's scale), in graph order."""
    floats = _float_initializers(model)
    consumers = _consumers(model)
    producers = {name: node for node in model.graph.node for name in node.output}
    found = []
    for position, node in enumerate(model.graph.node):
        slots = PARAMETER_SLOTS.get(node.op_type, ()) if node.domain in ("", "ai.onnx") else ()
        layer_norm = not slots and _spelt_out_layer_norm(node, producers, floats)
        slots = (0, 1) if layer_norm else slots
        inputs = reads(node) if node.op_type == "Loop" and node.domain in ("", "ai.onnx") else list(node.input)
        if node.op_type == "Loop":
            slots = tuple(range(2, len(inputs)))  # after the trip count and the condition
        parameters = []
        for name in (inputs[i] for i in slots if i < len(inputs)):
            parts = concat_parts(name, producers) if node.op_type in RECURRENT else [name]  # split in recurrent.py
            parameters += [part for part in parts if part in floats and part not in parameters]
        if not parameters:
            continue
        after = consumers.get(node.output[0], [])
        bias_less = node.op_type == "MatMul" or layer_norm or (node.op_type in _BIAS_AFTER and len(node.input) < 3)
        while node.op_type not in ("MatMul", "Mul") and len(after) == 1 and after[0].op_type in _LAYOUT:
            after = consumers.get(after[0].output[0], [])  # tf2onnx's Conv1D: Conv → Squeeze → bias Add
        if bias_less and len(after) == 1 and after[0].op_type == "Add":
            bias = [name for name in after[0].input if name in floats and name not in parameters]
            parameters += bias[:1]
        found.append(Layer(node, parameters, position))
    return found


def _feeds_output(model: onnx.ModelProto, layer: Layer) -> bool:
    """True when the layer (its bias Add included) reaches a graph output through at most one activation."""
    outputs = {value.name for value in model.graph.output}
    consumers = _consumers(model)
    current = layer.weight_node.output[0]
    after = consumers.get(current, [])
    if len(after) == 1 and after[0].op_type == "Add" and any(p in after[0].input for p in layer.parameters[1:]):
        current = after[0].output[0]
    if current in outputs:
        return True
    after = consumers.get(current, [])
    return len(after) == 1 and after[0].op_type in ACTIVATIONS and after[0].output[0] in outputs


def dense_layers(model: onnx.ModelProto) -> list[Layer]:
    return [layer for layer in layers(model) if layer.weight_node.op_type in DENSE]


def default_spec(model: onnx.ModelProto) -> tuple[str, str]:
    """('head', why) where the model ends in a Dense/Linear layer, else ('none', why)."""
    found = dense_layers(model)
    if found and _feeds_output(model, found[-1]):
        return "head", "the model ends in a Dense/Linear layer: its head is trainable"
    last = model.graph.node[-1].op_type if model.graph.node else "nothing"
    return "none", f"no training step: the model does not end in a Dense/Linear layer (its last node is {last})"


def choose(model: onnx.ModelProto, spec: str) -> list[str]:
    """The trainable initializer names for a checked, explicit spec (not 'none')."""
    found = layers(model)
    if not found:
        raise UnsupportedModelError("--trainable: the model has no layer with parameters")
    if spec == "head":
        dense = dense_layers(model)
        if not dense or not _feeds_output(model, dense[-1]):
            raise UnsupportedModelError(
                "--trainable head: the model's last Dense/Linear layer does not feed an output directly "
                "(through at most one activation); use last:N or all"
            )
        chosen = dense[-1:]
    elif spec == "all":
        chosen = found
    else:
        count = int(_LAST.fullmatch(spec).group(1))
        if count > len(found):
            raise BadInputError(f"--trainable {spec}: the model has only {len(found)} layers with parameters")
        chosen = found[-count:]
    names: list[str] = []
    for layer in chosen:
        names += [name for name in layer.parameters if name not in names]
    return names


def split(model: onnx.ModelProto, spec: str, parameters: list[str]) -> Split:
    """The tail (nodes downstream of a parameter, in graph order), the cut tensors and trained outputs."""
    tainted = set(parameters)
    tail = []
    for node in model.graph.node:
        if any(name in tainted for name in reads(node)):
            tail.append(node)
            tainted.update(name for name in node.output if name)
    produced = {name for node in tail for name in node.output}
    constant = {init.name for init in model.graph.initializer} | {node.output[0] for node in model.graph.node if node.op_type == "Constant"}
    cut: list[str] = []
    for node in tail:
        for name in reads(node):
            if name and name not in produced and name not in tainted and name not in constant and name not in cut:
                cut.append(name)
    outputs = [value.name for value in model.graph.output if value.name in produced]
    if not outputs:
        raise UnsupportedModelError("the trainable parameters reach no graph output")
    return Split(spec=spec, parameters=list(parameters), tail=tail, cut=cut, outputs=outputs)


def initial_values(model: onnx.ModelProto, names: list[str]) -> dict[str, np.ndarray]:
    """The parameters' values in `model.onnx`."""
    found = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    return {name: found[name] for name in names}
