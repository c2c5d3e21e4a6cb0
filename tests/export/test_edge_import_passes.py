"""The lowering passes for imported graphs, each on a hand-built graph: blocked before, ONNX.js
runs it after, and onnxruntime gives the same numbers on the unlowered and the lowered file."""

from __future__ import annotations

import numpy as np
import onnx

from export.edge.lowering import check_inputs, fitting, lower
from export.edge.passes import activations, constant_if, conv_transpose
from export.edge.rules import CONV_BATCH_ON_CPU, blocker_summary
from export.onnx_file import freeze_inputs
from export.verify import compare, onnxruntime_runner

from . import onnx_graphs


def lowered_on_onnxjs(
    model: onnx.ModelProto,
    sample: dict,
    expect: list[str],
    backends: tuple[str, ...] = ("cpu", "wasm", "webgl"),
    cpu_trap: str | None = None,
) -> onnx.ModelProto:
    """Lowered, free on every one of `backends`; `cpu_trap`: a reason that is to stay on cpu only."""
    assert any(blocker_summary(model).values()), "the graph should block ONNX.js before lowering"
    lowering = lower(model, sample)
    applied = [record["name"] for record in lowering.passes if record["applied"]]
    assert set(expect) <= set(applied), lowering.passes
    for backend in backends:
        found = lowering.blockers[backend]
        trapped = cpu_trap is not None and backend == "cpu"
        assert (found and all(cpu_trap in reason for reason in found)) if trapped else not found, lowering.blockers
    inputs = fitting(lowering.model, check_inputs(model, sample, 16))
    assert len(inputs) >= 17  # the sample and its 16 random twins at least
    report = compare(onnxruntime_runner(model), onnxruntime_runner(lowering.model), inputs)
    assert report.max_abs_diff <= 1e-5, report.per_output
    return lowering.model


def test_hard_sigmoid_and_hard_swish_become_clip_and_mul():
    model, sample = onnx_graphs.hard_activations()
    # a 3x3 Conv over a free batch: ONNX.js cpu would get images 1… wrong
    lowered = lowered_on_onnxjs(model, sample, ["hard-activations-and-pow", "opset-down"], cpu_trap=CONV_BATCH_ON_CPU)
    ops = {node.op_type for node in lowered.graph.node}
    assert not ops & {"HardSigmoid", "HardSwish"} and "Clip" in ops


def test_clip_bounds_and_pools_past_opset_10_go_down_to_attributes():
    model, sample = onnx_graphs.clip_and_pool_opset12()
    lowered = lowered_on_onnxjs(model, sample, ["opset-down"])
    clip = next(node for node in lowered.graph.node if node.op_type == "Clip")
    assert len(clip.input) == 1 and {a.name for a in clip.attribute} == {"min", "max"}


def test_nearest_resize_over_pinned_dims_becomes_tile():
    model, sample = onnx_graphs.nearest_resize()
    lowered = lowered_on_onnxjs(model, sample, ["pin-free-dims", "nearest-resize-to-tile"])
    assert "Resize" not in {node.op_type for node in lowered.graph.node}
    assert [d.dim_value for d in lowered.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 5, 7]


def test_pow_and_max_are_decomposed():
    model, sample = onnx_graphs.pow_and_max()
    lowered = lowered_on_onnxjs(model, sample, ["hard-activations-and-pow"])
    assert not {node.op_type for node in lowered.graph.node} & {"Pow", "Max"}


def test_pow_with_other_exponent_is_left_alone():
    model, sample = onnx_graphs.pow_and_max()
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(np.array(2.5, np.float32), "two"))
    result = activations.run(model, sample)
    assert [node.op_type for node in result.graph.node].count("Pow") == 1


def test_frozen_sample_rate_folds_shape_arithmetic_and_the_if():
    model, sample = onnx_graphs.shape_arithmetic_if()
    frozen, values = freeze_inputs(model, {"sr": "16000"})
    assert [value.name for value in frozen.graph.input] == ["x"] and values["sr"] == 16000
    lowered = lowered_on_onnxjs(frozen, {"x": sample["x"]}, ["pin-free-dims", "fold-constants"])
    assert "If" not in {node.op_type for node in lowered.graph.node}
    # the then-branch (×2) was taken, as onnxruntime takes it on the unfrozen file
    expected = onnxruntime_runner(model)(sample)["y"]
    assert np.allclose(onnxruntime_runner(lowered)({"x": sample["x"]})["y"], expected, atol=1e-6)


def test_constant_if_inlines_the_taken_branch_only():
    model, sample = onnx_graphs.shape_arithmetic_if()
    frozen, _ = freeze_inputs(model, {"sr": "8000"})
    cond = onnx.numpy_helper.from_array(np.array(False), "is16")
    frozen.graph.node.remove(next(n for n in frozen.graph.node if n.op_type == "Equal"))
    frozen.graph.initializer.append(cond)
    result = constant_if.run(frozen, {"x": sample["x"]})
    ops = [node.op_type for node in result.graph.node]
    assert "If" not in ops and "Neg" in ops and "Mul" not in ops
    want = -(sample["x"] + 0.5)
    assert np.allclose(onnxruntime_runner(result)({"x": sample["x"]})["y"], want)


def test_conv_transpose_with_kernel_equal_to_stride_becomes_conv_and_depth_to_space():
    for group in (1, 2):
        model, sample = onnx_graphs.conv_transpose(group)
        lowered = lowered_on_onnxjs(model, sample, ["conv-transpose-to-depth-to-space", "opset-down"])
        ops = [node.op_type for node in lowered.graph.node]
        assert "ConvTranspose" not in ops and ops.count("Conv") == 2 and "Transpose" in ops


def test_conv_transpose_with_overlapping_windows_is_left_alone():
    model, sample = onnx_graphs.conv_transpose()
    node = next(node for node in model.graph.node if node.op_type == "ConvTranspose")
    node.attribute.remove(next(a for a in node.attribute if a.name == "strides"))
    node.attribute.append(onnx.helper.make_attribute("strides", [1, 1]))
    assert conv_transpose.run(model, sample) is None


def test_integer_one_hot_becomes_gather_of_sign_and_stays_exact_at_the_int32_extremes():
    model, sample = onnx_graphs.integer_one_hot()
    lowered = lowered_on_onnxjs(model, sample, ["integer-equal-to-gather", "integer-reshape-to-unsqueeze"], ("cpu", "wasm"))
    ops = {node.op_type for node in lowered.graph.node}
    assert not ops & {"Equal", "Cast", "Reshape", "Sub", "Add"}, ops  # wasm's Sub/Add take float32 only
    extremes = np.array([[np.iinfo(np.int32).min, np.iinfo(np.int32).max, -1, 0, 4, 5]], np.int32)
    want, got = onnxruntime_runner(model)({"bytes": extremes})["y"], onnxruntime_runner(lowered)({"bytes": extremes})["y"]
    assert np.array_equal(want, got)
    assert np.array_equal(got[0, 2:4], np.stack([np.zeros(3, np.float32), want[0, 3]]))  # -1 hits no class, 0 hits one


def test_integer_inputs_to_float_only_operators_are_named_per_backend():
    model, _ = onnx_graphs.integer_one_hot()
    summary = blocker_summary(model)
    assert "Reshape (int32 input: ONNX.js takes floats only)" in summary["cpu"], summary
    graph = model.graph  # what a naive one-hot rewrite would write: int32 Sub, which wasm's own Sub refuses
    graph.node[1].op_type = "Sub"
    del graph.node[2:]
    graph.output[0].CopyFrom(onnx_graphs.info("hit", [None, 6, 5], onnx.TensorProto.INT32))
    summary = blocker_summary(model)
    assert "Sub (int32 input: the wasm backend takes float32 only)" in summary["wasm"]
    assert not any(reason.startswith("Sub") for reason in summary["cpu"]), summary
