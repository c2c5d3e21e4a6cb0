"""The browser file never costs the export: a lowered file that fails its proof against the source, or
a lowering that breaks, leaves model.onnx and model.json written, the failure (with its figure) in
`edge.blockers`, and the page on onnxruntime-web with the cloud file; exit 0 and one line saying so."""

from __future__ import annotations

import copy
import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgecloud.cli import main as cli
from export.edge import artifact
from export.edge.lowering import Lowering, lower


def hard_swish_model() -> onnx.ModelProto:
    """MatMul → HardSwish: ONNX.js 0.1.8 has no HardSwish, so the export lowers it."""
    weight = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("HardSwish", ["h"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def export(tmp_path, capsys) -> tuple[int, str, str]:
    onnx.save(hard_swish_model(), tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32))
    code = cli(["export", str(tmp_path / "m.onnx"), "--sample", str(tmp_path / "x.npy"), "--name", "m", "--out", str(tmp_path / "reg")])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_real_lowering_of_this_model_passes_its_proof(tmp_path, capsys):
    code, out, _ = export(tmp_path, capsys)
    edge = json.loads((tmp_path / "reg/m/1/model.json").read_text())["edge"]
    assert code == 0 and edge["file"] == "model.edge.onnx" and edge["runtime"] == "onnxjs", edge
    assert "the browser runs model.edge.onnx on ONNX.js" in out


def test_a_lowered_file_failing_its_proof_costs_only_the_browser_file(tmp_path, capsys, monkeypatch):
    def drifting(model, sample, tolerance):
        """The real lowering, then a fault no pass check saw: the output scaled by 1.01."""
        lowered = lower(model, sample, tolerance)
        broken = copy.deepcopy(lowered.model)
        scale = numpy_helper.from_array(np.array(1.01, np.float32), "scale")
        broken.graph.initializer.append(scale)
        last = broken.graph.output[0].name
        for node in broken.graph.node:
            node.output[:] = [f"{name}.before" if name == last else name for name in node.output]
        broken.graph.node.append(helper.make_node("Mul", [f"{last}.before", "scale"], [last]))
        return Lowering(model=broken, changed=True, passes=lowered.passes, blockers=lowered.blockers, parity=lowered.parity)

    monkeypatch.setattr(artifact, "lower", drifting)
    code, out, err = export(tmp_path, capsys)
    version = tmp_path / "reg/m/1"
    manifest = json.loads((version / "model.json").read_text())
    assert code == 0, err
    assert (version / "model.onnx").is_file() and not (version / "model.edge.onnx").exists()
    assert manifest["parity"]["source_vs_onnxruntime"]["passed"]
    edge = manifest["edge"]
    assert edge["file"] == "model.onnx" and edge["runtime"] == "onnxruntime-web" and edge["backends"] == []
    for backend in ("cpu", "wasm", "webgl"):
        proof = [reason for reason in edge["blockers"][backend] if reason.startswith("the lowered file failed its proof")]
        assert proof and "output 'y' differs by" in proof[0], edge["blockers"][backend]
    assert "model.edge.onnx" not in manifest["files"]
    line = out.strip().splitlines()[-1]
    assert "the browser runs model.onnx on onnxruntime-web: ONNX.js cannot (the lowered file failed its proof" in line


def test_a_lowering_that_breaks_costs_only_the_browser_file(tmp_path, capsys, monkeypatch):
    def broken(model, sample, tolerance):
        raise RuntimeError("a pass ran into a graph it did not expect")

    monkeypatch.setattr(artifact, "lower", broken)
    code, out, err = export(tmp_path, capsys)
    edge = json.loads((tmp_path / "reg/m/1/model.json").read_text())["edge"]
    assert code == 0, err
    assert edge["runtime"] == "onnxruntime-web" and edge["file"] == "model.onnx"
    assert "the lowering failed: a pass ran into a graph it did not expect" in edge["blockers"]["wasm"]
    assert "on onnxruntime-web" in out


def test_the_first_differing_operator_is_named(tmp_path, capsys, monkeypatch):
    """A lowered file whose MatMul reads a wrong weight: the bisection names that node, not the output."""

    def wrong_weight(model, sample, tolerance):
        lowered = lower(model, sample, tolerance)
        broken = copy.deepcopy(lowered.model)
        matmul = next(node for node in broken.graph.node if node.op_type == "MatMul")
        matmul.name = "the-culprit"
        weight = next(init for init in broken.graph.initializer if init.name == matmul.input[1])
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
        return Lowering(model=broken, changed=True, passes=lowered.passes, blockers=lowered.blockers, parity=lowered.parity)

    monkeypatch.setattr(artifact, "lower", wrong_weight)
    code, _, err = export(tmp_path, capsys)
    edge = json.loads((tmp_path / "reg/m/1/model.json").read_text())["edge"]
    proof = next(reason for reason in edge["blockers"]["cpu"] if reason.startswith("the lowered file failed"))
    assert code == 0, err
    assert "first operator that differs: MatMul 'the-culprit' (output 'h'" in proof, proof
