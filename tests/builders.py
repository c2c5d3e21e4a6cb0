"""Tiny hand-built model folders for tests that need a served model but no training framework."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper


def relu_model(width: int = 3) -> onnx.ModelProto:
    """y = relu(x), x: float32[?, width] (IR 8: onnxruntime 1.31 refuses onnx 1.23's default IR 14)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, width])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13)])


def write_version_dir(
    folder: Path,
    name: str = "relu",
    model: onnx.ModelProto | None = None,
    serving: dict[str, Any] | None = None,
    *,
    checked: bool = True,
) -> Path:
    """A registry version folder (model.onnx + a minimal model.json) like `edgecloud export` writes.

    The signature comes from the graph itself; `serving` is model.json's optional serving policy.
    `checked=False` skips onnx's checker, for models that are wrong on purpose.
    """
    from export.manifest import file_entry, graph_inputs, tensor_specs

    model = model or relu_model()
    model.ir_version = min(model.ir_version, 8)  # onnxruntime 1.31 refuses onnx 1.23's default IR 14
    if checked:
        onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    manifest = {
        "name": name,
        "version": folder.name,
        "inputs": tensor_specs(graph_inputs(model)),
        "outputs": tensor_specs(list(model.graph.output)),
        "opset": 13,
        "files": {"model.onnx": {**file_entry(folder / "model.onnx"), "role": "cloud+edge"}},
        "cloud": {"file": "model.onnx"},
        "edge": {"file": "model.onnx", "runtime": "onnxjs", "passes": [], "verified": {}},
    }
    if serving is not None:
        manifest["serving"] = serving
    (folder / "model.json").write_text(json.dumps(manifest))
    return folder
