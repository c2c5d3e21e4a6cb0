"""LSTM / GRU / RNN unrolled into MatMul, Add, Sigmoid, Tanh and Mul for the signature's fixed
sequence length: ONNX.js has no recurrent operators, but runs the unrolled cell.

Follows the ONNX operator definitions (gates iofc for LSTM, zrh for GRU, `linear_before_reset`,
peepholes, forward/reverse/bidirectional, optional initial states). Only layout 0 and the
default activations are rewritten; anything else is left for the checker to report.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...manifest import default_opset
from ...verify import Feeds
from ..graph import Builder, attribute, constants, fixed_except_batch, probe_shapes, topological_sort

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT_ACTIVATIONS = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"], "RNN": ["tanh"]}


def _supported(node: onnx.NodeProto, known: dict[str, np.ndarray], seq_len: int) -> bool:
    if attribute(node, "layout", 0) != 0 or attribute(node, "clip") is not None or attribute(node, "input_forget", 0):
        return False
    activations = [a.decode() if isinstance(a, bytes) else a for a in attribute(node, "activations", [])]
    expected = _DEFAULT_ACTIVATIONS[node.op_type]
    if activations and [a.lower() for a in activations] != expected * (len(activations) // len(expected)):
        return False
    if node.input[1] not in known or node.input[2] not in known:
        return False
    for index in (3, 7) if node.op_type == "LSTM" else (3,):
        if len(node.input) > index and node.input[index] and node.input[index] not in known:
            return False
    if len(node.input) > 4 and node.input[4]:
        lens = known.get(node.input[4])
        if lens is None or not np.all(lens == seq_len):
            return False
    return True


class _Cell:
    """The weights of one direction, transposed and split per gate, as graph constants."""

    def __init__(self, build: Builder, node: onnx.NodeProto, known: dict[str, np.ndarray], direction: int) -> None:
        gates = _GATES[node.op_type]
        w, r = known[node.input[1]][direction], known[node.input[2]][direction]
        hidden = r.shape[-1]
        bias_name = node.input[3] if len(node.input) > 3 else ""
        bias = known[bias_name][direction] if bias_name else np.zeros(2 * gates * hidden, w.dtype)
        peep_name = node.input[7] if node.op_type == "LSTM" and len(node.input) > 7 else ""
        self.build, self.hidden = build, hidden
        part = lambda m, g: m[g * hidden : (g + 1) * hidden]  # noqa: E731 - gate slice
        self.w = [build.const(part(w, g).T.copy(), "w") for g in range(gates)]
        self.r = [build.const(part(r, g).T.copy(), "r") for g in range(gates)]
        wb, rb = bias[: gates * hidden], bias[gates * hidden :]
        self.b = [build.const(part(wb, g) + part(rb, g), "b") for g in range(gates)]
        self.wb = [build.const(part(wb, g), "wb") for g in range(gates)]
        self.rb = [build.const(part(rb, g), "rb") for g in range(gates)]
        peep = known[peep_name][direction] if peep_name else None
        self.p = [build.const(part(peep, g), "p") for g in range(3)] if peep is not None else None

    def gate(self, x: str, h: str, g: int, bias: str | None = None) -> str:
        op = self.build.op
        pre = op("Add", [op("MatMul", [x, self.w[g]]), op("MatMul", [h, self.r[g]])])
        return op("Add", [pre, bias or self.b[g]])

    def lstm(self, x: str, h: str, c: str) -> tuple[str, str]:
        op = self.build.op
        i_pre, o_pre, f_pre, c_pre = (self.gate(x, h, g) for g in range(4))
        if self.p:
            i_pre = op("Add", [i_pre, op("Mul", [self.p[0], c])])
            f_pre = op("Add", [f_pre, op("Mul", [self.p[2], c])])
        i, f = op("Sigmoid", [i_pre]), op("Sigmoid", [f_pre])
        c_new = op("Add", [op("Mul", [f, c]), op("Mul", [i, op("Tanh", [c_pre])])])
        if self.p:
            o_pre = op("Add", [o_pre, op("Mul", [self.p[1], c_new])])
        return op("Mul", [op("Sigmoid", [o_pre]), op("Tanh", [c_new])]), c_new

    def gru(self, x: str, h: str, linear_before_reset: bool) -> str:
        op = self.build.op
        z = op("Sigmoid", [self.gate(x, h, 0)])
        r = op("Sigmoid", [self.gate(x, h, 1)])
        x_part = op("Add", [op("MatMul", [x, self.w[2]]), self.wb[2]])
        if linear_before_reset:
            h_part = op("Mul", [r, op("Add", [op("MatMul", [h, self.r[2]]), self.rb[2]])])
        else:
            h_part = op("Add", [op("MatMul", [op("Mul", [r, h]), self.r[2]]), self.rb[2]])
        candidate = op("Tanh", [op("Add", [x_part, h_part])])
        one = self.build.const(np.ones(1, np.float32), "one")
        return op("Add", [op("Mul", [op("Sub", [one, z]), candidate]), op("Mul", [z, h])])

    def rnn(self, x: str, h: str) -> str:
        return self.build.op("Tanh", [self.gate(x, h, 0)])


def _initial(build: Builder, node: onnx.NodeProto, index: int, direction: int, hidden: int) -> str:
    if len(node.input) > index and node.input[index]:
        return build.squeeze(build.slice(node.input[index], 0, direction, direction + 1), [0])
    return build.const(np.zeros((1, hidden), np.float32), "zeros")


def _unroll(model: onnx.ModelProto, node: onnx.NodeProto, known: dict[str, np.ndarray], seq_len: int) -> None:
    build = Builder(model, default_opset(model))
    directions = 2 if attribute(node, "direction", b"forward") in (b"bidirectional", "bidirectional") else 1
    reverse = attribute(node, "direction", b"forward") in (b"reverse", "reverse")
    steps = [build.squeeze(build.slice(node.input[0], 0, t, t + 1), [0]) for t in range(seq_len)]
    per_step: list[list[str]] = [[] for _ in range(seq_len)]
    last_h, last_c = [], []
    for d in range(directions):
        cell = _Cell(build, node, known, d)
        h = _initial(build, node, 5, d, cell.hidden)
        c = _initial(build, node, 6, d, cell.hidden) if node.op_type == "LSTM" else None
        order = range(seq_len - 1, -1, -1) if (reverse or d == 1) else range(seq_len)
        for t in order:
            if node.op_type == "LSTM":
                h, c = cell.lstm(steps[t], h, c)
            elif node.op_type == "GRU":
                h = cell.gru(steps[t], h, bool(attribute(node, "linear_before_reset", 0)))
            else:
                h = cell.rnn(steps[t], h)
            per_step[t].append(h)
        last_h.append(h)
        last_c.append(c)
    outputs = list(node.output) + [""] * 3
    if outputs[0]:
        frames = [build.concat([build.unsqueeze(h, [0, 1]) for h in hs], 1) for hs in per_step]
        build.concat(frames, 0, output=outputs[0])
    if outputs[1]:
        build.concat([build.unsqueeze(h, [0]) for h in last_h], 0, output=outputs[1])
    if node.op_type == "LSTM" and outputs[2]:
        build.concat([build.unsqueeze(c, [0]) for c in last_c], 0, output=outputs[2])
    build.replace(node)


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    targets = [node for node in model.graph.node if node.op_type in _GATES and node.domain in ("", "ai.onnx")]
    if not targets or not fixed_except_batch(model):
        return None
    shapes = probe_shapes(model, sample)
    known = constants(model.graph)
    changed = False
    for node in targets:
        seq_len = shapes[node.input[0]][0]
        if _supported(node, known, seq_len):
            _unroll(model, node, known, seq_len)
            changed = True
    if not changed:
        return None
    topological_sort(model)
    return model
