"""Hand-built ONNX graphs (onnx.helper) for the lowering tests: one trap of ONNX.js each."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)


def _model(nodes, inputs, outputs, inits, opset: int = 13) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # onnx 1.23 stamps IR 14, which onnxruntime 1.31 refuses
    onnx.checker.check_model(model)
    return model


def _w(*shape) -> np.ndarray:
    return (RNG.standard_normal(shape) * 0.5).astype(np.float32)


def value(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def softmax_middle_axis() -> tuple[onnx.ModelProto, dict]:
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    return _model([node], [value("x", [None, 5, 4])], [value("y", [None, 5, 4])], {}), {"x": _w(1, 5, 4) * 4}


def log_softmax() -> tuple[onnx.ModelProto, dict]:
    node = helper.make_node("LogSoftmax", ["x"], ["y"], axis=-1)
    return _model([node], [value("x", [None, 6])], [value("y", [None, 6])], {}), {"x": _w(1, 6)}


def conv1d_pools() -> tuple[onnx.ModelProto, dict]:
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3], pads=[1, 1], strides=[1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2], strides=[2], ceil_mode=0, dilations=[1]),  # as torch writes
        helper.make_node("AveragePool", ["m"], ["y"], kernel_shape=[2], strides=[2]),
    ]
    inits = {"w": _w(4, 2, 3), "b": _w(4)}
    return _model(nodes, [value("x", [None, 2, 16])], [value("y", [None, 4, 4])], inits), {"x": _w(1, 2, 16)}


def recurrent(op: str, direction: str = "forward", **attrs) -> tuple[onnx.ModelProto, dict]:
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    seq, batch_input, hidden = 5, 3, 4
    dirs = 2 if direction == "bidirectional" else 1
    inits = {"W": _w(dirs, gates * hidden, batch_input), "R": _w(dirs, gates * hidden, hidden),
             "B": _w(dirs, 2 * gates * hidden), "h0": _w(dirs, 1, hidden)}  # fmt: skip
    inputs = ["x", "W", "R", "B", "", "h0"]
    outputs = [value("Y", [seq, dirs, 1, hidden]), value("Y_h", [dirs, 1, hidden])]
    if op == "LSTM":
        inits["c0"], inits["P"] = _w(dirs, 1, hidden), _w(dirs, 3 * hidden)
        inputs += ["c0", "P"]
    node = helper.make_node(op, inputs, ["Y", "Y_h"], hidden_size=hidden, direction=direction, **attrs)
    return _model([node], [value("x", [seq, 1, batch_input])], outputs, inits), {"x": _w(seq, 1, batch_input)}


def squeeze_split_slice() -> tuple[onnx.ModelProto, dict]:
    nodes = [
        helper.make_node("Unsqueeze", ["x", "ax0"], ["u"]),
        helper.make_node("Split", ["u", "sizes"], ["a", "b"], axis=-1),
        helper.make_node("Slice", ["a", "starts", "ends", "axes"], ["s"]),
        helper.make_node("Add", ["s", "b"], ["t"]),
        helper.make_node("Squeeze", ["t", "ax0"], ["y"]),
    ]
    inits = {"ax0": np.array([0], np.int64), "sizes": np.array([3, 3], np.int64), "starts": np.array([0], np.int64),
             "ends": np.array([np.iinfo(np.int64).max], np.int64), "axes": np.array([-1], np.int64)}  # fmt: skip
    return _model(nodes, [value("x", [None, 6])], [value("y", [None, 3])], inits), {"x": _w(1, 6)}


def last_of_stack_by_gather() -> tuple[onnx.ModelProto, dict]:
    """What an unrolled Keras GRU leaves: steps stacked by Concat, the last one sliced out, Gather(x, t)."""
    nodes = [helper.make_node("Gather", ["x", f"t{t}"], [f"s{t}"], axis=1) for t in range(3)]
    nodes += [helper.make_node("Unsqueeze", [f"s{t}", "ax0"], [f"u{t}"]) for t in range(3)]
    nodes += [
        helper.make_node("Concat", ["u0", "u1", "u2"], ["stack"], axis=0),
        helper.make_node("Slice", ["stack", "minus1", "big", "ax0"], ["last"]),
        helper.make_node("Squeeze", ["last", "ax0"], ["y"]),
    ]
    inits = {f"t{t}": np.array(t, np.int64) for t in range(3)}
    inits |= {"ax0": np.array([0], np.int64), "minus1": np.array([-1], np.int64), "big": np.array([2**62], np.int64)}
    return _model(nodes, [value("x", [None, 3, 4])], [value("y", [None, 4])], inits), {"x": _w(1, 3, 4)}


def last_of_lstm_stack() -> tuple[onnx.ModelProto, dict]:
    """What an unrolled Keras LSTM leaves: steps stacked [T, 1, N, H], the direction axis squeezed, the last step sliced."""
    nodes = [helper.make_node("Gather", ["x", f"t{t}"], [f"s{t}"], axis=1) for t in range(3)]
    nodes += [helper.make_node("Unsqueeze", [f"s{t}", "ax01"], [f"u{t}"]) for t in range(3)]
    nodes += [
        helper.make_node("Concat", ["u0", "u1", "u2"], ["stack"], axis=0),
        helper.make_node("Squeeze", ["stack", "ax1"], ["steps"]),
        helper.make_node("Slice", ["steps", "minus1", "big", "ax0"], ["last"]),
        helper.make_node("Squeeze", ["last", "ax0"], ["y"]),
    ]
    inits = {f"t{t}": np.array(t, np.int64) for t in range(3)}
    inits |= {"ax0": np.array([0], np.int64), "ax1": np.array([1], np.int64), "ax01": np.array([0, 1], np.int64),
              "minus1": np.array([-1], np.int64), "big": np.array([2**62], np.int64)}  # fmt: skip
    return _model(nodes, [value("x", [None, 3, 4])], [value("y", [None, 4])], inits), {"x": _w(1, 3, 4)}
