"""Each operator the training step can now differentiate (export/train/torch_layers.py): its torch
translation computes what onnxruntime computes for the ONNX node (float32), and its gradient with
respect to every float input (parameters included) agrees with finite differences in float64
(torch.autograd.gradcheck). The convolution backward written for the ONNX export
(torch_backward.py) equals torch's own for every stride/padding/dilation/group/transposed case."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.verify import onnxruntime_runner

pytestmark = pytest.mark.torch
OPSET = 18

# (id, op, attributes, float inputs {name: shape}, constant inputs {name: array}, input order, outputs)
F = np.float32
CASES = [
    (
        "conv1d",
        "Conv",
        {"pads": [1, 2], "strides": [2], "dilations": [2]},
        {"x": [2, 4, 11], "w": [6, 4, 3], "b": [6]},
        {},
        ["x", "w", "b"],
        1,
    ),
    ("conv2d-groups", "Conv", {"pads": [1, 0, 1, 0], "group": 2}, {"x": [2, 4, 6, 5], "w": [6, 2, 3, 2]}, {}, ["x", "w"], 1),
    (
        "conv2d-depthwise-same",
        "Conv",
        {"auto_pad": "SAME_UPPER", "group": 4, "strides": [2, 1]},
        {"x": [1, 4, 7, 6], "w": [4, 1, 3, 3]},
        {},
        ["x", "w"],
        1,
    ),
    (
        "conv-transpose",
        "ConvTranspose",
        {"strides": [2], "pads": [1, 0], "output_padding": [1]},
        {"x": [2, 3, 5], "w": [3, 4, 3], "b": [4]},
        {},
        ["x", "w", "b"],
        1,
    ),
    (
        "conv-transpose-groups",
        "ConvTranspose",
        {"group": 2, "dilations": [2, 1]},
        {"x": [1, 4, 4, 4], "w": [4, 3, 2, 2]},
        {},
        ["x", "w"],
        1,
    ),
    ("maxpool1d", "MaxPool", {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}, {"x": [2, 3, 9]}, {}, ["x"], 1),
    ("maxpool2d", "MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}, {"x": [1, 2, 6, 6]}, {}, ["x"], 1),
    ("avgpool1d-excluding-pads", "AveragePool", {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}, {"x": [2, 3, 9]}, {}, ["x"], 1),
    ("avgpool2d", "AveragePool", {"kernel_shape": [2, 3], "count_include_pad": 1, "pads": [1, 1, 1, 1]}, {"x": [1, 2, 5, 6]}, {}, ["x"], 1),
    ("global-average-pool", "GlobalAveragePool", {}, {"x": [2, 3, 5, 4]}, {}, ["x"], 1),
    ("global-max-pool", "GlobalMaxPool", {}, {"x": [2, 3, 7]}, {}, ["x"], 1),
    (
        "batch-norm",
        "BatchNormalization",
        {"epsilon": 1e-3},
        {"x": [2, 3, 5], "scale": [3], "bias": [3]},
        {"mean": np.array([0.1, -0.2, 0.3], F), "var": np.array([0.5, 1.5, 2.0], F)},
        ["x", "scale", "bias", "mean", "var"],
        1,
    ),
    ("layer-norm", "LayerNormalization", {"axis": -1}, {"x": [2, 3, 5], "scale": [5], "bias": [5]}, {}, ["x", "scale", "bias"], 1),
    (
        "gather-embedding",
        "Gather",
        {"axis": 0},
        {"table": [7, 4]},
        {"ids": np.array([[1, 6, 2], [0, -1, 3]], np.int64)},
        ["table", "ids"],
        1,
    ),
    ("concat", "Concat", {"axis": 1}, {"a": [2, 3], "b": [2, 4]}, {}, ["a", "b"], 1),
    ("split", "Split", {"axis": 1}, {"x": [2, 5]}, {"sizes": np.array([2, 3], np.int64)}, ["x", "sizes"], 2),
    (
        "slice",
        "Slice",
        {},
        {"x": [3, 8]},
        {
            "starts": np.array([1, -6], np.int64),
            "ends": np.array([3, 100], np.int64),
            "axes": np.array([0, 1], np.int64),
            "steps": np.array([1, 2], np.int64),
        },
        ["x", "starts", "ends", "axes", "steps"],
        1,
    ),
    (
        "pad-constant",
        "Pad",
        {"mode": "constant"},
        {"x": [2, 3, 4]},
        {"pads": np.array([0, 1, 2, 0, 0, 1], np.int64), "value": np.array(0.5, F)},
        ["x", "pads", "value"],
        1,
    ),
    ("pad-reflect", "Pad", {"mode": "reflect"}, {"x": [1, 2, 5]}, {"pads": np.array([0, 0, 2, 0, 0, 1], np.int64)}, ["x", "pads"], 1),
    ("clip", "Clip", {}, {"x": [3, 4]}, {"low": np.array(-0.5, F), "high": np.array(0.7, F)}, ["x", "low", "high"], 1),
    ("hard-sigmoid", "HardSigmoid", {"alpha": 0.3, "beta": 0.4}, {"x": [3, 4]}, {}, ["x"], 1),
    ("erf", "Erf", {}, {"x": [3, 4]}, {}, ["x"], 1),
    ("expand", "Expand", {}, {"x": [3, 1]}, {"dims": np.array([2, 3, 4], np.int64)}, ["x", "dims"], 1),
    (
        "lstm-forward",
        "LSTM",
        {"hidden_size": 3},
        {"x": [4, 2, 5], "W": [1, 12, 5], "R": [1, 12, 3], "B": [1, 24]},
        {},
        ["x", "W", "R", "B"],
        3,
    ),
    (
        "lstm-bidirectional-initial-state",
        "LSTM",
        {"hidden_size": 2, "direction": "bidirectional"},
        {"x": [3, 2, 4], "W": [2, 8, 4], "R": [2, 8, 2], "B": [2, 16], "h0": [2, 2, 2], "c0": [2, 2, 2]},
        {},
        ["x", "W", "R", "B", "", "h0", "c0"],
        3,
    ),
    ("gru", "GRU", {"hidden_size": 3}, {"x": [4, 2, 5], "W": [1, 9, 5], "R": [1, 9, 3], "B": [1, 18]}, {}, ["x", "W", "R", "B"], 2),
    (
        "gru-reverse-linear-before-reset",
        "GRU",
        {"hidden_size": 3, "direction": "reverse", "linear_before_reset": 1},
        {"x": [3, 2, 4], "W": [1, 9, 4], "R": [1, 9, 3], "B": [1, 18]},
        {},
        ["x", "W", "R", "B"],
        2,
    ),
]
# The attention and spelt-out LayerNorm ops of the text classifier (test_text_classifier.py).
ATTENTION = [
    ("softmax-last-axis", "Softmax", {"axis": -1}, {"x": [2, 3, 4]}, {}, ["x"], 1),
    ("matmul-two-variables", "MatMul", {}, {"a": [2, 3, 4], "b": [2, 4, 3]}, {}, ["a", "b"], 1),
    ("transpose", "Transpose", {"perm": [0, 2, 1]}, {"x": [2, 3, 4]}, {}, ["x"], 1),
    ("reduce-mean-axes-input", "ReduceMean", {"keepdims": 0}, {"x": [2, 3, 4]}, {"axes": np.array([1], np.int64)}, ["x", "axes"], 1),
    ("div", "Div", {}, {"a": [2, 3], "b": [2, 3]}, {}, ["a", "b"], 1),
    ("sqrt", "Sqrt", {}, {"positive": [2, 3]}, {}, ["positive"], 1),
    ("pow-square", "Pow", {}, {"x": [2, 3]}, {"two": np.array(2.0, F)}, ["x", "two"], 1),
]


def _scalar(name: str, kind: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, kind, [])


def _recurrent_loop_body() -> onnx.GraphProto:
    """One time step as tf2onnx writes a while loop: read x[i] from the outer scope, h = tanh(x[i]·W + h);
    the condition is `cond and i < 10`; W is loop-carried unchanged; h is also a scan output."""
    nodes = [
        helper.make_node("Gather", ["x", "i"], ["xt"]),
        helper.make_node("MatMul", ["xt", "w_in"], ["m"]),
        helper.make_node("Add", ["m", "h_in"], ["s"]),
        helper.make_node("Tanh", ["s"], ["h_out"]),
        helper.make_node("Less", ["i", "limit"], ["early"]),
        helper.make_node("And", ["cond_in", "early"], ["cond_out"]),
        helper.make_node("Identity", ["w_in"], ["w_out"]),
        helper.make_node("Identity", ["h_out"], ["h_scan"]),
    ]
    return helper.make_graph(
        nodes,
        "step",
        [
            _scalar("i", TensorProto.INT64),
            _scalar("cond_in", TensorProto.BOOL),
            *(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("h_in", "w_in")),
        ],
        [
            _scalar("cond_out", TensorProto.BOOL),
            *(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("h_out", "w_out", "h_scan")),
        ],
        initializer=[numpy_helper.from_array(np.array(10, np.int64), "limit")],
    )


LOOP = (
    "loop-recurrent-body",
    "Loop",
    {"body": _recurrent_loop_body()},
    {"x": [5, 2, 4], "h": [2, 3], "W": [4, 3]},
    {"trips": np.array(5, np.int64), "cond": np.array(True)},
    ["trips", "cond", "h", "W"],
    3,
)
BIDIRECTIONAL_GRU = (
    "gru-bidirectional-linear-before-reset",
    "GRU",
    {"hidden_size": 2, "direction": "bidirectional", "linear_before_reset": 1},
    {"x": [3, 2, 4], "W": [2, 6, 4], "R": [2, 6, 2], "B": [2, 12]},
    {},
    ["x", "W", "R", "B"],
    2,
)
REVERSE_SEQUENCE = (
    "reverse-sequence-full-length",
    "ReverseSequence",
    {"time_axis": 0, "batch_axis": 1},
    {"x": [4, 2, 3]},
    {"lengths": np.array([4, 4], np.int64)},
    ["x", "lengths"],
    1,
)
CASES += [LOOP, BIDIRECTIONAL_GRU, REVERSE_SEQUENCE]
GELU = ("gelu", "Gelu", {"approximate": "tanh"}, {"x": [3, 4]}, {}, ["x"], 1)  # opset 20


def node_model(op, attributes, floats, constants, order, outputs, opset=OPSET) -> onnx.ModelProto:
    names = [f"y{i}" for i in range(outputs)]
    node = helper.make_node(op, order, names, name=op.lower(), **attributes)
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in floats.items()]
    graph = helper.make_graph(
        [node],
        op,
        inputs,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names],
        initializer=[numpy_helper.from_array(v, n) for n, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def values(floats, seed=0) -> dict[str, np.ndarray]:
    """Magnitudes in [0.2, 1], random signs (an input named "positive" keeps them positive: Sqrt's domain)."""
    rng = np.random.default_rng(seed)
    found = {n: rng.uniform(0.2, 1.0, s).astype(F) * rng.choice([-1, 1], s).astype(F) for n, s in floats.items()}
    return {n: np.abs(v) if n == "positive" else v for n, v in found.items()}


@pytest.mark.parametrize("case", [*CASES, *ATTENTION, GELU], ids=lambda c: c[0])
def test_the_translation_computes_what_onnxruntime_computes_and_its_gradient_is_finite_differences(case) -> None:
    import torch

    from export.train.torch_graph import TorchTail

    name, op, attributes, floats, constants, order, outputs = case
    opset = 20 if op == "Gelu" else OPSET
    model = node_model(op, attributes, floats, constants, order, outputs, opset)
    feeds = values(floats)
    want = onnxruntime_runner(model)(feeds)
    tail = TorchTail(list(model.graph.node), constants, opset)
    got = tail({n: torch.from_numpy(v) for n, v in feeds.items()})
    for output in want:
        np.testing.assert_allclose(got[output].numpy(), want[output], atol=1e-5, err_msg=f"{name}: {output}")

    doubles = {n: torch.from_numpy(v.astype(np.float64)).requires_grad_() for n, v in feeds.items()}
    tail64 = TorchTail(list(model.graph.node), {k: v.astype(np.float64) if v.dtype == F else v for k, v in constants.items()}, opset)
    keys = list(doubles)

    def function(*tensors):
        known = tail64(dict(zip(keys, tensors)))
        return tuple(known[f"y{i}"] for i in range(outputs))

    assert torch.autograd.gradcheck(function, tuple(doubles.values()), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "transposed, groups, stride, padding, dilation, spatial", list(itertools.product([False, True], [1, 2], [1, 2], [0, 1], [1, 2], [1, 2]))
)
def test_the_exported_convolution_backward_equals_torchs(transposed, groups, stride, padding, dilation, spatial) -> None:
    import torch

    from export.train.torch_backward import convolution_backward

    torch.manual_seed(0)
    x = torch.randn(2, 4, *[9, 7][:spatial], dtype=torch.float64, requires_grad=True)
    kernel = [3, 2][:spatial]
    w = torch.randn(*([4, 6 // groups] if transposed else [6, 4 // groups]), *kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    extra = [1 if transposed and stride > 1 else 0] * spatial
    args = ([stride] * spatial, [padding] * spatial, [dilation] * spatial, transposed, extra, groups)
    y = torch.ops.aten.convolution.default(x, w, b, *args)
    grad = torch.randn_like(y)
    want = torch.autograd.grad(y, (x, w, b), grad)
    got = convolution_backward(grad, x.detach(), w.detach(), [6], *args, [True, True, True])
    for a, c in zip(want, got):
        assert a.shape == c.shape
        assert float((a - c).abs().max()) <= 1e-10
