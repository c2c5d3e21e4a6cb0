"""Each lowering pass on a hand-built graph: the checker names the trap before, the lowered
model has none left, and onnxruntime gives the same numbers (sample, random and batch inputs)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from export.edge.lowering import check_inputs, lower
from export.edge.rules import blocker_summary, blockers, selector_matches
from export.manifest import default_opset
from export.verify import compare, onnxruntime_runner

from . import edge_graphs


def assert_lowered(model: onnx.ModelProto, sample: dict, expect_pass: str) -> onnx.ModelProto:
    lowering = lower(model, sample)
    applied = [record["name"] for record in lowering.passes if record["applied"]]
    assert expect_pass in applied, lowering.passes
    assert lowering.blockers == {"cpu": [], "wasm": [], "webgl": []}, lowering.blockers
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


def test_slice_of_squeezed_concat_keeps_only_the_last_step():
    model, sample = edge_graphs.last_of_lstm_stack()
    lowered = assert_lowered(model, sample, "slice-of-concat")
    assert "Concat" not in {node.op_type for node in lowered.graph.node}
