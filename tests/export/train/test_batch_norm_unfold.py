"""batch_norm.unfold_batch_norms on hand-built graphs of the two folds tf2onnx leaves (no TensorFlow):
a Mul + Add after a conv, and a BatchNormalization fused into the conv's weight and bias. The
unfolded graph computes the same outputs, its γ/β/statistics are initializers named after the
framework variables, and the folded constants it no longer reads are gone."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from export.train.batch_norm import unfold_batch_norms
from export.train.reference import Normalisation, Variable

C, EPS = 3, 1e-3
RNG = np.random.default_rng(0)
KERNEL = RNG.standard_normal((2, 2, 1, C)).astype(np.float32)  # Keras layout [kh, kw, in, out]
BIAS = RNG.standard_normal(C).astype(np.float32)
NORM = Normalisation(
    layer="norm",
    gamma=Variable("norm/gamma", "norm", RNG.uniform(0.5, 1.5, C).astype(np.float32)),
    beta=Variable("norm/beta", "norm", RNG.normal(0, 0.3, C).astype(np.float32)),
    mean=RNG.normal(0, 0.3, C).astype(np.float32),
    variance=RNG.uniform(0.5, 1.5, C).astype(np.float32),
    epsilon=EPS,
    mean_key="norm/moving_mean",
    variance_key="norm/moving_variance",
)
VARIABLES = [Variable("conv/kernel", "conv", KERNEL), Variable("conv/bias", "conv", BIAS), NORM.gamma, NORM.beta]


def model(nodes: list, initializers: dict[str, np.ndarray]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 1, 4, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, C, 4, 4])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def run(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def onnx_kernel() -> np.ndarray:
    return KERNEL.transpose(3, 2, 0, 1)  # [out, in, kh, kw]


def check(m: onnx.ModelProto) -> None:
    x = RNG.standard_normal((2, 1, 4, 4)).astype(np.float32)
    before = run(m, x)
    written = unfold_batch_norms(m, [NORM], VARIABLES)
    assert set(written) == {"norm"} and {"norm/gamma", "norm/beta"} <= set(written["norm"])
    onnx.checker.check_model(m, full_check=True)
    values = {init.name: numpy_helper.to_array(init) for init in m.graph.initializer}
    assert [n.op_type for n in m.graph.node] == ["Conv", "BatchNormalization"]
    assert list(m.graph.node[1].input[1:]) == ["norm/gamma", "norm/beta", "norm/moving_mean", "norm/moving_variance"]
    np.testing.assert_array_equal(values["norm/gamma"], NORM.gamma.value)
    np.testing.assert_array_equal(values[m.graph.node[0].input[1]], onnx_kernel())  # Keras's kernel, not the fused one
    np.testing.assert_array_equal(values[m.graph.node[0].input[2]], BIAS)
    read = {name for node in m.graph.node for name in node.input}
    assert set(values) <= read  # no folded constant left behind
    np.testing.assert_allclose(run(m, x), before, atol=1e-5)


def test_a_mul_and_add_after_the_conv_become_a_batchnormalization() -> None:
    inv, shift = NORM.inv.reshape(1, C, 1, 1), NORM.shift.reshape(1, C, 1, 1)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[0, 0, 1, 1]),
        helper.make_node("Mul", ["c", "inv"], ["m"]),
        helper.make_node("Add", ["m", "shift"], ["y"]),
    ]
    check(model(nodes, {"w": onnx_kernel(), "b": BIAS, "inv": inv, "shift": shift}))


def test_a_batchnormalization_fused_into_the_conv_is_taken_out_again() -> None:
    fused_w = onnx_kernel() * NORM.inv.reshape(C, 1, 1, 1)
    fused_b = BIAS * NORM.inv + NORM.shift
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[0, 0, 1, 1])]
    check(model(nodes, {"w": fused_w, "b": fused_b}))


def test_an_unrelated_mul_is_left_alone() -> None:
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]), helper.make_node("Mul", ["c", "k"], ["y"])]
    m = model(nodes, {"w": onnx_kernel(), "b": BIAS, "k": np.full((1, C, 1, 1), 2.0)})
    assert unfold_batch_norms(m, [NORM], VARIABLES) == {}
    assert [n.op_type for n in m.graph.node] == ["Conv", "Mul"]
