"""Small hand-built ONNX graphs shaped like what third-party exporters write (paddle2onnx, YOLO,
silero-vad): each returns (model, sample) with the trap a lowering pass removes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)


def make(nodes, inputs, outputs, inits=(), opset: int = 13) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, n) for n, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def info(name: str, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def conv_weight(out: int, inp: int, k: int = 3) -> np.ndarray:
    return RNG.normal(0, 0.3, (out, inp, k, k)).astype(np.float32)


def hard_activations(opset: int = 14):
    """Conv → HardSwish → HardSigmoid, as MobileNetV3 (paddle) writes it."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("HardSwish", ["c"], ["s"]),
        helper.make_node("HardSigmoid", ["s"], ["y"], alpha=0.2, beta=0.5),
    ]
    model = make(nodes, [info("x", [None, 2, 6, 6])], [info("y", [None, 4, 6, 6])], [("w", conv_weight(4, 2))], opset)
    return model, {"x": RNG.normal(0, 3, (1, 2, 6, 6)).astype(np.float32)}


def clip_and_pool_opset12():
    """Clip with min/max inputs and MaxPool/AveragePool at opset 12."""
    nodes = [
        helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
        helper.make_node("MaxPool", ["c"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["m"], ["y"], kernel_shape=[2, 2], strides=[1, 1]),
    ]
    inits = [("lo", np.array(-0.5, np.float32)), ("hi", np.array(0.7, np.float32))]
    model = make(nodes, [info("x", [None, 2, 8, 8])], [info("y", [None, 2, 3, 3])], inits, opset=12)
    return model, {"x": RNG.normal(0, 1, (1, 2, 8, 8)).astype(np.float32)}


def nearest_resize():
    """YOLO's ×2 nearest upsampling on an image whose height and width are free."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["c", "", "scales"], ["y"], mode="nearest"),
    ]
    inits = [("w", conv_weight(2, 3)), ("scales", np.array([1, 1, 2, 2], np.float32))]
    model = make(nodes, [info("x", [1, 3, "h", "w"])], [info("y", [1, 2, None, None])], inits, opset=13)
    return model, {"x": RNG.normal(0, 1, (1, 3, 5, 7)).astype(np.float32)}


def pow_and_max():
    """LayerNorm-like arithmetic: Pow(x, 2), Max(v, eps), Pow(., 0.5)."""
    nodes = [
        helper.make_node("Pow", ["x", "two"], ["sq"]),
        helper.make_node("Max", ["sq", "eps"], ["m"]),
        helper.make_node("Pow", ["m", "half"], ["y"]),
    ]
    inits = [("two", np.array(2, np.float32)), ("eps", np.array(1e-3, np.float32)), ("half", np.array(0.5, np.float32))]
    model = make(nodes, [info("x", [None, 5])], [info("y", [None, 5])], inits, opset=13)
    return model, {"x": RNG.normal(0, 1, (1, 5)).astype(np.float32)}


def shape_arithmetic_if():
    """silero-vad's shape: a free sequence, zeros made by Shape/ConstantOfShape/Expand, and an If on
    a sample-rate input (frozen to 16000 by --freeze-input before lowering)."""
    then_graph = helper.make_graph(
        [helper.make_node("Mul", ["xz", "two"], ["t_out"])],
        "then",
        [],
        [info("t_out", None)],
        [numpy_helper.from_array(np.array(2, np.float32), "two")],
    )
    else_graph = helper.make_graph([helper.make_node("Neg", ["xz"], ["e_out"])], "else", [], [info("e_out", None)])
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"]),
        helper.make_node("ConstantOfShape", ["shp"], ["zeros"], value=numpy_helper.from_array(np.array([0.5], np.float32))),
        helper.make_node("Add", ["x", "zeros"], ["xz"]),
        helper.make_node("Equal", ["sr", "sixteen"], ["is16"]),
        helper.make_node("If", ["is16"], ["y"], then_branch=then_graph, else_branch=else_graph),
    ]
    inits = [("sixteen", np.array(16000, np.int64))]
    model = make(nodes, [info("x", [1, "seq"]), info("sr", [], TensorProto.INT64)], [info("y", [1, None])], inits, 15)
    return model, {"x": RNG.normal(0, 1, (1, 9)).astype(np.float32), "sr": np.array(16000, np.int64)}


def conv_transpose(group: int = 1):
    """PP-OCR's DB head upsampling: ConvTranspose with kernel = stride = 2 (and a bias), free H, W."""
    weight = RNG.normal(0, 0.3, (4, 6 // group, 2, 2)).astype(np.float32)  # [C, O / group, s, s]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["c", "up", "bias"], ["y"], kernel_shape=[2, 2], strides=[2, 2], group=group),
    ]
    inits = [("w", conv_weight(4, 3)), ("up", weight), ("bias", RNG.normal(0, 1, 6).astype(np.float32))]
    model = make(nodes, [info("x", [1, 3, "h", "w"])], [info("y", [1, 6, None, None])], inits, opset=12)
    return model, {"x": RNG.normal(0, 1, (1, 3, 5, 7)).astype(np.float32)}


def integer_one_hot():
    """tf2onnx's jax `one_hot` of an int32 input: Reshape to [N, L, 1], Equal with 0..K-1, Cast, MatMul."""
    nodes = [
        helper.make_node("Reshape", ["bytes", "column"], ["r"]),
        helper.make_node("Equal", ["r", "classes"], ["hit"]),
        helper.make_node("Cast", ["hit"], ["one_hot"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["one_hot", "embedding"], ["y"]),
    ]
    inits = [
        ("column", np.array([-1, 6, 1], np.int64)),
        ("classes", np.arange(5, dtype=np.int32).reshape(1, 1, 5)),
        ("embedding", RNG.normal(0, 1, (5, 3)).astype(np.float32)),
    ]
    model = make(nodes, [info("bytes", [None, 6], TensorProto.INT32)], [info("y", [None, 6, 3])], inits, opset=15)
    return model, {"bytes": RNG.integers(0, 5, (1, 6)).astype(np.int32)}
