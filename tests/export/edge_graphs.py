"""Hand-built ONNX graphs (onnx.helper) for the lowering tests: one trap of ONNX.js each."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)


def _model(nodes, inputs, outputs, inits, opset: int = 13, ml: bool = False) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("ai.onnx.ml", 1)] if ml else [])
    model = helper.make_model(graph, opset_imports=imports)
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
    inits = {
        "W": _w(dirs, gates * hidden, batch_input),
        "R": _w(dirs, gates * hidden, hidden),
        "B": _w(dirs, 2 * gates * hidden),
        "h0": _w(dirs, 1, hidden),
    }
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
    inits = {
        "ax0": np.array([0], np.int64),
        "sizes": np.array([3, 3], np.int64),
        "starts": np.array([0], np.int64),
        "ends": np.array([np.iinfo(np.int64).max], np.int64),
        "axes": np.array([-1], np.int64),
    }
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


def conv_pool_flatten_gemm() -> tuple[onnx.ModelProto, dict]:
    """MXNet Gluon's Conv2D → MaxPool2D → Flatten → Dense: a Flatten with no axis attribute (axis 1)."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[0, 0, 0, 0]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=0),
        helper.make_node("Flatten", ["m"], ["f"]),
        helper.make_node("Gemm", ["f", "dense_w", "dense_b"], ["y"], transB=1),
    ]
    inits = {"w": _w(4, 1, 3, 3), "b": _w(4), "dense_w": _w(3, 36), "dense_b": _w(3)}
    return _model(nodes, [value("x", [None, 1, 8, 8])], [value("y", [None, 3])], inits), {"x": _w(1, 1, 8, 8)}


def _ml(op: str, inputs: list[str], outputs: list[str], **attrs) -> onnx.NodeProto:
    return helper.make_node(op, inputs, outputs, domain="ai.onnx.ml", **attrs)


def scaler_linear_regressor() -> tuple[onnx.ModelProto, dict]:
    """skl2onnx's StandardScaler + Ridge with two targets: Scaler → LinearRegressor."""
    nodes = [
        _ml("Scaler", ["x"], ["scaled"], offset=_w(5).tolist(), scale=(np.abs(_w(5)) + 0.5).tolist()),
        _ml("LinearRegressor", ["scaled"], ["y"], coefficients=_w(2, 5).ravel().tolist(), intercepts=_w(2).tolist(), targets=2),
    ]
    return _model(nodes, [value("x", [None, 5])], [value("y", [None, 2])], {}, ml=True), {"x": _w(1, 5) * 3}


def linear_classifier(labels, post_transform: str = "SOFTMAX", norm: str | None = "L1", strings: bool = False):
    """skl2onnx's LogisticRegression with zipmap=False: LinearClassifier (+ Normalizer) → label, probabilities."""
    classes = len(labels)
    label_attr = {"classlabels_strings": [str(v) for v in labels]} if strings else {"classlabels_ints": list(labels)}
    scores = "scores" if norm else "probabilities"
    nodes = [
        _ml(
            "LinearClassifier",
            ["x"],
            ["label", scores],
            coefficients=(_w(classes, 5) * 4).ravel().tolist(),
            intercepts=_w(classes).tolist(),
            multi_class=1,
            post_transform=post_transform,
            **label_attr,
        )
    ]
    if norm:
        nodes.append(_ml("Normalizer", ["scores"], ["probabilities"], norm=norm))
    label_type = TensorProto.STRING if strings else TensorProto.INT64
    outputs = [helper.make_tensor_value_info("label", label_type, [None]), value("probabilities", [None, classes])]
    return _model(nodes, [value("x", [None, 5])], outputs, {}, ml=True), {"x": _w(1, 5)}


def stacked_steps(axis: int) -> tuple[onnx.ModelProto, dict]:
    """Two recurrent steps whose states are stacked (return_sequences) while the next step reads them."""
    rank_out = 3
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Tanh", ["xw"], ["h1"]),
        helper.make_node("Unsqueeze", ["h1", "axes"], ["h1_stacked"]),  # before the MatMul that reads h1: the webgl trap
        helper.make_node("MatMul", ["h1", "r"], ["h1r"]),
        helper.make_node("Tanh", ["h1r"], ["h2"]),
        helper.make_node("Unsqueeze", ["h2", "axes"], ["h2_stacked"]),
        helper.make_node("Concat", ["h1_stacked", "h2_stacked"], ["y"], axis=axis),
    ]
    inits = {"w": _w(3, 5), "r": _w(5, 5), "axes": np.array([axis], np.int64)}
    shape = [None, 5]
    shape.insert(axis % rank_out, 2)
    return _model(nodes, [value("x", [None, 3])], [value("y", shape)], inits), {"x": _w(1, 3)}


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
    inits |= {
        "ax0": np.array([0], np.int64),
        "ax1": np.array([1], np.int64),
        "ax01": np.array([0, 1], np.int64),
        "minus1": np.array([-1], np.int64),
        "big": np.array([2**62], np.int64),
    }
    return _model(nodes, [value("x", [None, 3, 4])], [value("y", [None, 4])], inits), {"x": _w(1, 3, 4)}


def conv_height_one_batch(batch: int = 4) -> tuple[onnx.ModelProto, dict]:
    """A 1-D convolution as `conv1d-to-2d` leaves it (`[N, C, 1, L]`, kernel `[1, 3]`) at a fixed
    batch, as a training step has it: ONNX.js cpu's Conv gets images 1… wrong."""
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[1, 3], pads=[0, 1, 0, 1], strides=[1, 2])
    inits = {"w": _w(3, 2, 1, 3), "b": _w(3)}
    inputs, outputs = [value("x", [batch, 2, 1, 16])], [value("y", [batch, 3, 1, 8])]
    return _model([node], inputs, outputs, inits, opset=9), {"x": _w(batch, 2, 1, 16)}
