"""The lowering passes for imported graphs, each on a hand-built graph: blocked before, ONNX.js
runs it after, and onnxruntime gives the same numbers on the unlowered and the lowered file."""

from __future__ import annotations

import numpy as np
import onnx

from export.edge.lowering import check_inputs, fitting, lower
from export.edge.passes import activations, constant_if
from export.edge.rules import CONV_BATCH_ON_CPU, blocker_summary
from export.onnx_file import freeze_inputs
from export.verify import compare, onnxruntime_runner

from . import onnx_graphs


def lowered_on_onnxjs(model: onnx.ModelProto, sample: dict, expect: list[str], cpu_trap: str | None = None) -> onnx.ModelProto:
    """`cpu_trap`: a reason that is to stay on cpu only (every other backend free)."""
    assert any(blocker_summary(model).values()), "the graph should block ONNX.js before lowering"
    lowering = lower(model, sample)
    applied = [record["name"] for record in lowering.passes if record["applied"]]
    assert set(expect) <= set(applied), lowering.passes
    cpu = lowering.blockers["cpu"]
    assert (all(cpu_trap in reason for reason in cpu) and cpu) if cpu_trap else not cpu, lowering.blockers
    assert lowering.blockers["wasm"] == lowering.blockers["webgl"] == [], lowering.blockers
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
