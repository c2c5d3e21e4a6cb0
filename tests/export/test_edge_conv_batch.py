"""ONNX.js cpu's Conv over a batch (the demo forecaster's training step mismatch): in Chromium
the graph as `conv1d-to-2d` leaves it is wrong on cpu past image 0, and right after
`conv-batch-as-height`; the rules name the trap on cpu only, and only while it is there."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgecloud.browser import HarnessBrowser
from export.edge.lowering import lower
from export.edge.rules import CONV_BATCH_ON_CPU, blocker_summary
from export.verify import onnxruntime_runner

from . import edge_graphs

pytestmark = [pytest.mark.integration]


def on_onnxjs(registry, model: onnx.ModelProto, feeds: dict, backend: str, context) -> np.ndarray:
    folder = registry / "conv_batch" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / f"{backend}.onnx")
    with HarnessBrowser(registry, context=context) as browser:
        result = browser.run("onnxjs", backend, f"/models/conv_batch/1/{backend}.onnx", [feeds], ["x"], 1)
    assert "outputs" in result, result
    return result["outputs"][0]["y"]


def test_conv_over_a_batch_is_wrong_on_onnxjs_cpu_until_lowered(tmp_path, browser_context):
    model, sample = edge_graphs.conv_height_one_batch()
    want = onnxruntime_runner(model)(sample)["y"]
    assert any(CONV_BATCH_ON_CPU in reason for reason in blocker_summary(model)["cpu"])
    assert not blocker_summary(model)["wasm"]

    before = on_onnxjs(tmp_path, model, sample, "cpu", browser_context)
    assert np.abs(before[0] - want[0]).max() <= 1e-5  # image 0 is right ...
    assert np.abs(before[1:] - want[1:]).max() > 1e-2  # ... the others are not, and no error says so
    assert np.abs(on_onnxjs(tmp_path, model, sample, "wasm", browser_context) - want).max() <= 1e-5

    lowering = lower(model, sample)
    applied = {record["name"]: record for record in lowering.passes if record["applied"]}
    assert applied["conv-batch-as-height"]["max_abs_diff"] <= 1e-5
    assert lowering.blockers == {"cpu": [], "wasm": [], "webgl": []}
    assert [node.op_type for node in lowering.model.graph.node] == ["Transpose", "Conv", "Transpose"]
    after = on_onnxjs(tmp_path, lowering.model, sample, "cpu", browser_context)
    assert np.abs(after - want).max() <= 1e-5


def test_a_taller_kernel_over_a_batch_stays_named_on_cpu():
    model, sample = edge_graphs.conv_pool_flatten_gemm()  # a 3x3 kernel, free batch
    lowering = lower(model, sample)
    assert any(CONV_BATCH_ON_CPU in reason for reason in lowering.blockers["cpu"])
    assert lowering.blockers["wasm"] == [] and "cpu" not in lowering.backends
