"""Put back the BatchNormalization a converter folded away, when the step is to train its scale and bias.

Keras 3 computes an inference-mode BatchNormalization as `x·inv + (β − μ·inv)` with
`inv = γ / √(σ² + ε)` (`tf.nn.batch_normalization`); freezing for tf2onnx lets TF's grappler
constant-fold `inv` and the shift, and tf2onnx then either keeps them as a Mul and an Add after
the convolution (seen when the conv has a bias, and for Conv1D) or fuses them into the conv's
weight and bias (`BackToBackOptimizer`'s Conv+BatchNormalization fusion, seen for a bias-less or
zero-bias conv). Either way γ and β have no tensor of their own, so a step over that layer
could not train them separately (reference.complete names the first one left out).

This module undoes the fold from the framework's own values, after conversion: a Mul by `inv`
(+ the Add of the shift) becomes a BatchNormalization node, and a conv whose weight is a
framework kernel times `inv` gets that kernel and bias back with a BatchNormalization node after
it. The node's scale, bias, mean and variance are initializers named after the framework
variables (`norm/gamma`, `norm/beta`, `norm/moving_mean`, `norm/moving_variance`), so the step
trains γ and β while the running statistics stay frozen (model.json `training.trained.frozen`).
Values are found by closeness (float32 rounding of the folded product), in graph order, and
the pipeline's parity check proves the unfolded graph against Keras as for any export.

Why after conversion rather than turning the folds off: grappler's constant folding is what
makes every other Keras graph convertible (it cannot be turned off for one layer), and tf2onnx's
fusion is one entry of an optimizer that also removes the layout Transposes; an export without a
training step over a BatchNormalization keeps today's fused graph (pipeline: only `all` and
`last:N` that reach such a layer unfold). Not covered (left folded, so `all` fails naming γ):
a BatchNormalization with `center=False` or `scale=False`, one inside a nested Keras model, one
on a non-channel axis in ONNX's layout, or one whose folded constants were merged further (into a
following MatMul).
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .biases import unique_name
from .reference import Normalisation, Variable

RTOL, ATOL = 1e-5, 1e-6


def _close(value: np.ndarray, want: np.ndarray) -> bool:
    return value.shape == want.shape and bool(np.allclose(value, want, rtol=RTOL, atol=ATOL))


def _channels_at_axis_1(value: np.ndarray, channels: int) -> np.ndarray | None:
    """The per-channel vector of a broadcast constant shaped [1, C, 1, …], else None."""
    if value.ndim < 2 or value.shape[1] != channels or any(d != 1 for i, d in enumerate(value.shape) if i != 1):
        return None
    return value.reshape(channels)


class _Graph:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
        self.detached: list[str] = []  # initializers a folded constant lived in, dropped when nothing reads them
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def constant(self, node: onnx.NodeProto) -> tuple[str, str] | None:
        """(the other input, the initializer input) of a binary node with one initializer."""
        names = list(node.input)
        if len(names) != 2 or (names[0] in self.values) == (names[1] in self.values):
            return None
        return (names[1], names[0]) if names[0] in self.values else (names[0], names[1])

    def drop_detached(self) -> None:
        read = {name for node in self.model.graph.node for name in node.input} | {o.name for o in self.model.graph.output}
        unused = set(self.detached) - read
        kept = [init for init in self.model.graph.initializer if init.name not in unused]
        del self.model.graph.initializer[:]
        self.model.graph.initializer.extend(kept)

    def add_initializer(self, wanted: str, value: np.ndarray) -> str:
        name = unique_name(self.model, wanted)
        self.model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
        self.values[name] = value
        return name

    def set_initializer(self, name: str, value: np.ndarray) -> None:
        for index, init in enumerate(self.model.graph.initializer):
            if init.name == name:
                self.model.graph.initializer[index].CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))
        self.values[name] = value

    def batch_norm(self, norm: Normalisation, source: str, output: str) -> onnx.NodeProto:
        inputs = [
            source,
            self.add_initializer(norm.gamma.key, norm.gamma.value),
            self.add_initializer(norm.beta.key, norm.beta.value),
            self.add_initializer(norm.mean_key, norm.mean),
            self.add_initializer(norm.variance_key, norm.variance),
        ]
        return helper.make_node(
            "BatchNormalization", inputs, [output], name=unique_name(self.model, f"{norm.layer}/BatchNormalization"), epsilon=norm.epsilon
        )


def _unfold_mul_add(graph: _Graph, norm: Normalisation) -> list[str] | None:
    """Mul(x, inv) [→ Add(·, shift)] → BatchNormalization(x)."""
    channels = norm.gamma.value.shape[0]
    for node in list(graph.model.graph.node):
        pair = graph.constant(node) if node.op_type == "Mul" else None
        inv = _channels_at_axis_1(graph.values[pair[1]], channels) if pair else None
        if inv is None or not _close(inv.astype(np.float64), norm.inv):
            continue
        after = graph.consumers.get(node.output[0], [])
        add = after[0] if len(after) == 1 and after[0].op_type == "Add" else None
        shift_pair = graph.constant(add) if add is not None else None
        shift = _channels_at_axis_1(graph.values[shift_pair[1]], channels) if shift_pair else None
        if shift is not None and _close(shift.astype(np.float64), norm.shift):
            last = add
        elif np.allclose(norm.shift, 0, atol=ATOL):
            last = node
        else:
            continue
        graph.detached += [pair[1], *(shift_pair[1:] if last is add else [])]
        nodes = graph.model.graph.node
        index = list(nodes).index(node)
        replacement = graph.batch_norm(norm, pair[0], last.output[0])
        for gone in {id(node): node, id(last): last}.values():
            nodes.remove(gone)
        nodes.insert(index, replacement)
        return list(replacement.input[1:3])
    return None


def _kernel_in_layout(kernel: np.ndarray, weight: np.ndarray, inv: np.ndarray) -> np.ndarray | None:
    """The framework kernel laid out as the ONNX Conv weight, when that weight is kernel·inv; else None."""
    channels = inv.shape[0]
    if kernel.size != weight.size or kernel.size % channels or weight.shape[0] != channels:
        return None
    fused = (kernel.astype(np.float64).reshape(-1, channels) * inv).reshape(kernel.shape)
    source = np.reshape(fused, [d for d in fused.shape if d != 1])
    plain = np.reshape(kernel, source.shape)
    target = np.reshape(weight, [d for d in weight.shape if d != 1])
    if source.ndim != target.ndim:
        return None
    for order in itertools.permutations(range(source.ndim)):
        if tuple(source.shape[i] for i in order) == target.shape and _close(np.transpose(source, order), target.astype(np.float64)):
            return np.transpose(plain, order).reshape(weight.shape)
    return None


def _unfold_conv(graph: _Graph, norm: Normalisation, kernels: list[tuple[Variable, Variable | None]]) -> list[str] | None:
    """Conv(x, kernel·inv, bias·inv + shift) → BatchNormalization(Conv(x, kernel, bias))."""
    channels = norm.gamma.value.shape[0]
    for node in list(graph.model.graph.node):
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in graph.values:
            continue
        weight = graph.values[node.input[1]]
        fused_bias = graph.values.get(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(channels)
        if fused_bias is None or fused_bias.shape != (channels,):
            continue
        for kernel, bias in kernels:
            laid_out = _kernel_in_layout(kernel.value, weight, norm.inv)
            plain_bias = bias.value.astype(np.float64) if bias is not None else np.zeros(channels)
            if laid_out is None or not _close(fused_bias.astype(np.float64), plain_bias * norm.inv + norm.shift):
                continue
            graph.set_initializer(node.input[1], laid_out)
            graph.detached += list(node.input[2:3])
            del node.input[2:]
            if bias is not None:
                node.input.append(graph.add_initializer(bias.key, bias.value))
            output = node.output[0]
            node.output[0] = unique_name(graph.model, f"{output}/before_norm")
            nodes = graph.model.graph.node
            added = graph.batch_norm(norm, node.output[0], output)
            nodes.insert(list(nodes).index(node) + 1, added)
            kernels.remove((kernel, bias))
            return [*node.input[1:], *added.input[1:3]]
    return None


def unfold_batch_norms(model: onnx.ModelProto, norms: list[Normalisation], variables: list[Variable]) -> dict[str, list[str]]:
    """Unfold each folded BatchNormalization of `norms` in `model` (in place).

    Returns layer → the trainable initializers written for it (γ, β, and a fused conv's kernel and bias).
    """
    graph = _Graph(model)
    by_layer: dict[str, list[Variable]] = {}
    for variable in variables:
        by_layer.setdefault(variable.layer, []).append(variable)
    kernels = []
    for group in by_layer.values():
        kernel = next((v for v in group if v.key.endswith("/kernel") and v.value.ndim >= 3), None)
        if kernel is not None:
            kernels.append((kernel, next((v for v in group if v.key.endswith("/bias")), None)))
    found = {}
    for norm in norms:
        written = _unfold_mul_add(graph, norm) or _unfold_conv(graph, norm, kernels)
        if written:
            found[norm.layer] = written
    graph.drop_detached()
    return found
