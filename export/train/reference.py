"""The source framework's own training, and which of its variables each trainable initializer is.

Converters rename weights (tf2onnx: `model/dense_1/Cast/ReadVariableOp:0`) and may transpose
them (a MatMul on a Linear's weight; tf2onnx's Conv1D kernel [k, in, out] becomes [out, in, 1, k]),
so a variable is found by its values: equal up to a permutation of its axes, unit axes aside
(`Match.onnx_layout` maps the framework's value to the initializer's layout). Values alone are ambiguous for equal tensors (two all-zero biases): then the
candidate whose name the initializer's name contains (torch keeps state_dict names; tf2onnx
keeps layer names), else the one of the same layer as the weight already matched, else (a
bidirectional layer's fresh, equal biases) the one of the direction the part is split for, decides;
the framework layer of the same ONNX node's other tensors comes before all of these;
a tie left after that fails the export rather than training the wrong variable.

`complete` then holds the chosen set to the framework's layers: every trainable variable of a
layer one chosen initializer belongs to must itself be chosen (for `all`, every trainable
variable of the model), so the step never trains fewer tensors than the framework would and the
parity reference trains exactly the framework layers' variables.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import ExportError
from ..verify import Feeds
from .spec import Loss, Optimizer


@dataclass(frozen=True)
class Variable:
    """A framework variable that may be trained: its key, its layer, its current value."""

    key: str  # keras: variable path ("head/kernel"); torch: state_dict name ("fc.weight")
    layer: str  # keras: layer name; torch: module path
    value: np.ndarray


@dataclass(frozen=True)
class Normalisation:
    """A framework BatchNormalization in inference mode, which a converter may fold (batch_norm.py unfolds it)."""

    layer: str
    gamma: Variable
    beta: Variable
    mean: np.ndarray
    variance: np.ndarray
    epsilon: float
    mean_key: str
    variance_key: str

    @property
    def inv(self) -> np.ndarray:
        return self.gamma.value.astype(np.float64) / np.sqrt(self.variance.astype(np.float64) + self.epsilon)

    @property
    def shift(self) -> np.ndarray:
        return self.beta.value.astype(np.float64) - self.mean.astype(np.float64) * self.inv


@dataclass(frozen=True)
class Match:
    key: str
    permutation: tuple[int, ...] | None  # of the variable's non-unit axes; None: same layout
    gates: tuple[int, ...] | None = None  # then: blocks of the first axis (after the permutation), reordered

    def onnx_layout(self, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The framework variable's value laid out as the initializer (`shape`)."""
        if self.permutation is None:
            return value
        value = np.transpose(np.reshape(value, [d for d in value.shape if d != 1]), self.permutation)
        if self.gates is not None:
            blocks = np.split(value, len(self.gates), axis=0)
            value = np.concatenate([blocks[i] for i in self.gates], axis=0)
        return value.reshape(shape)

    @property
    def transposed(self) -> bool:
        return self.permutation is not None


Batch = tuple[Feeds, dict[str, np.ndarray]]  # (model inputs by ONNX name, targets by output name), real rows only


class Trainer(Protocol):
    """A converter's handle on the source framework's own training (see keras.py / torch.py)."""

    description: str  # e.g. "keras 3.15.1 Adam (GradientTape, training=False)", filled per optimizer

    def variables(self) -> list[Variable]: ...

    def normalisations(self) -> list[Normalisation]: ...  # folded by the converter, for batch_norm.py to unfold

    def train(
        self, keys: list[str], loss: Loss, optimizer: Optimizer, logits: bool, batches: list[Batch]
    ) -> list[dict[str, np.ndarray]]: ...

    def describe(self, optimizer: Optimizer) -> str: ...


def _tokens(name: str) -> set[str]:
    return {token for token in re.split(r"[/.:]", name) if token}


def _layer_token_match(onnx_name: str, variable: Variable) -> bool:
    layer = variable.layer
    tokens = _tokens(onnx_name)
    return bool(layer) and (layer in tokens or re.sub(r"_\d+$", "", layer) in {re.sub(r"_\d+$", "", t) for t in tokens})


def _permutation(variable: np.ndarray, value: np.ndarray) -> tuple[int, ...] | None:
    """A permutation of `variable`'s non-unit axes that makes it equal to `value`, else None."""
    if variable.size != value.size:
        return None
    source = np.reshape(variable, [d for d in variable.shape if d != 1])
    target = np.reshape(value, [d for d in value.shape if d != 1])
    if source.ndim != target.ndim or sorted(source.shape) != sorted(target.shape):
        return None
    for order in itertools.permutations(range(source.ndim)):
        if tuple(source.shape[i] for i in order) == target.shape and np.array_equal(np.transpose(source, order), target):
            return order
    return None


def gate_orders(variable: np.ndarray, value: np.ndarray, gates: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every (axis permutation, gate order) making a recurrent variable equal `value`.

    Recurrent weights are stored per gate in the first ONNX axis, in ONNX's gate order (LSTM
    i, o, f, c; GRU z, r, h), while frameworks keep their own order (Keras LSTM i, f, c, o; PyTorch
    LSTM i, f, g, o, GRU r, z, n) and Keras transposes the kernel. Equal gate blocks (Keras's zero
    i/c/o biases beside the forget gate's ones) give several orders; match() then takes the order
    of the layer's other tensors.
    """
    found = []
    if variable.size != value.size:
        return found
    source = np.reshape(variable, [d for d in variable.shape if d != 1])
    target = np.reshape(value, [d for d in value.shape if d != 1])
    if source.ndim != target.ndim or target.ndim not in (1, 2) or target.shape[0] % gates:
        return found
    for axes in itertools.permutations(range(source.ndim)):
        moved = np.transpose(source, axes)
        if moved.shape != target.shape:
            continue
        blocks = np.split(moved, gates, axis=0)
        for order in itertools.permutations(range(gates)):
            if np.array_equal(np.concatenate([blocks[i] for i in order], axis=0), target):
                found.append((axes, order))
    return found


def _is_gated(order: object) -> bool:
    return isinstance(order, tuple) and len(order) == 2 and isinstance(order[0], tuple)


_BACKWARD = re.compile(r"reverse|backward")


def _same_direction(name: str, candidates: list) -> list:
    """The candidates of the direction a split recurrent part names (recurrent.py: `…/forward`, `…/reverse`):
    PyTorch's `…_reverse` and Keras's `backward_…` variables are the reverse direction."""
    parts = set(name.split("/"))
    if not parts & {"forward", "reverse"}:
        return []
    return [c for c in candidates if bool(_BACKWARD.search(c[0].key)) == ("reverse" in parts)]


def match(
    parameters: dict[str, np.ndarray],
    variables: list[Variable],
    recurrent: dict[str, int] | None = None,
    groups: list[list[str]] | None = None,
) -> dict[str, Match]:
    """ONNX initializer name → the framework variable it holds (see the module docstring).

    `recurrent`: initializer name → gates per block, for LSTM/GRU weights (see gate_orders).
    `groups`: the initializers of each ONNX layer node; a tie goes first to the framework layer its
    node's other tensors were matched to (two Loops' equal fresh biases).
    """
    together = {name: [other for other in group if other != name] for group in groups or [] for name in group}
    found: dict[str, Match] = {}
    pending = {}
    for name, value in parameters.items():
        candidates = []
        gates = (recurrent or {}).get(name)
        if gates:
            for variable in variables:
                candidates += [(variable, order) for order in gate_orders(variable.value, value, gates)]
        for variable in [] if gates else variables:
            if variable.value.shape == value.shape and np.array_equal(variable.value, value):
                candidates.append((variable, None))
            else:
                order = _permutation(variable.value, value)
                if order is not None:
                    candidates.append((variable, order))
        if not candidates:
            raise ExportError(
                f"initializer {name!r} {list(value.shape)} holds no framework variable as such (the converter "
                "rewrote it): train fewer layers (--trainable head or last:N)"
            )
        pending[name] = candidates
    layers_of = {}
    for name in sorted(pending, key=lambda n: len(pending[n])):
        candidates = [c for c in pending[name] if c[0].key not in {m.key for m in found.values()}]
        candidates = _same_direction(name, candidates) or candidates
        if len(candidates) > 1 and len({c[0].key for c in candidates}) == 1 and _is_gated(candidates[0][1]):
            # One variable, several gate orders (equal blocks): the order of its layer's other tensors decides.
            siblings = {found[n].gates for n, layer in layers_of.items() if layer == candidates[0][0].layer}
            candidates = [c for c in candidates if c[1][1] in siblings][:1] or candidates
        if len(candidates) > 1:
            node_layers = {layers_of[other] for other in together.get(name, []) if other in layers_of}
            by_node = [c for c in candidates if c[0].layer in node_layers]
            by_name = [c for c in candidates if c[0].key == name or c[0].key in name]
            by_layer = [c for c in candidates if _layer_token_match(name, c[0])]
            by_sibling = [c for c in candidates if c[0].layer in layers_of.values()]
            candidates = next((group for group in (by_node, by_name, by_layer, by_sibling) if len(group) == 1), candidates)
        if len(candidates) != 1:
            keys = ", ".join(sorted(c[0].key for c in candidates)) or "none left"
            raise ExportError(f"cannot tell which framework variable initializer {name!r} is ({keys} hold equal values)")
        variable, order = candidates[0]
        found[name] = Match(variable.key, *order) if _is_gated(order) else Match(variable.key, order)
        layers_of[name] = variable.layer
    return found


def complete(matches: dict[str, Match], variables: list[Variable], spec: str) -> None:
    """Fail naming the first framework variable the chosen initializers leave out (see the module docstring)."""
    chosen = {m.key for m in matches.values()}
    layers = {v.layer for v in variables if v.key in chosen}
    for variable in variables:
        if variable.key not in chosen and (spec == "all" or variable.layer in layers):
            scope = "the model" if spec == "all" else f"layer {variable.layer!r}"
            raise ExportError(
                f"--trainable {spec}: the framework variable {variable.key!r} {list(variable.value.shape)} of {scope} "
                "has no trainable tensor in model.onnx (the converter folded or rewrote it): the step would train "
                "fewer tensors than the framework"
            )
