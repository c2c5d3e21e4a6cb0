"""Tiny hand-built model folders for tests that need a served model but no training framework."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper

from registry import model_json

ONNXJS_BACKENDS = ("cpu", "wasm", "webgl")


def relu_model(width: int = 3) -> onnx.ModelProto:
    """y = relu(x), x: float32[?, width] (IR 8: onnxruntime 1.31 refuses onnx 1.23's default IR 14)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, width])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13)])


def edge_entry(
    file: str = "model.onnx", runtime: str = "onnxjs", *, verified: dict[str, Any] | None = None, inputs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """model.json's `edge` for a hand-built model ONNX.js runs as it is (no blockers, so the page's
    policy alone picks the backends), through the same builder as export; `verified` as a test sets it."""
    entry = model_json.edge(
        file=file,
        runtime=runtime,
        lowered=file != "model.onnx",
        passes=[],
        blockers={b: [] for b in ONNXJS_BACKENDS},
        backends=list(ONNXJS_BACKENDS),
        inputs=inputs,
    )
    entry["verified"] = verified or {}
    return entry


def describe(
    folder: Path, name: str, model: onnx.ModelProto, files: dict[str, dict[str, Any]], edge: dict[str, Any], **sections: Any
) -> dict[str, Any]:
    """model.json of a hand-built version in FOLDER (its name is the version), built and validated by
    registry.model_json as export's is; `sections`: training, serving, parity."""
    from export.manifest import graph_inputs, tensor_specs

    opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return model_json.manifest(
        name=name,
        version=folder.name,
        source=model_json.source("onnx", onnx.__version__, "model.onnx"),
        opset=opset,
        ir_version=model.ir_version,
        inputs=tensor_specs(graph_inputs(model)),
        outputs=tensor_specs(list(model.graph.output)),
        files=files,
        cloud_file="model.onnx",
        edge=edge,
        **sections,
    )


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
    model = model or relu_model()
    model.ir_version = min(model.ir_version, 8)  # onnxruntime 1.31 refuses onnx 1.23's default IR 14
    if checked:
        onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    files = {"model.onnx": model_json.file_entry(folder / "model.onnx", role="cloud+edge")}
    manifest = describe(folder, name, model, files, edge_entry(), serving=serving)
    model_json.write(folder / model_json.MANIFEST_NAME, manifest)
    return folder


def mlp_model(opset: int = 13, extra_identity: bool = False) -> onnx.ModelProto:
    """y = relu(x·W1 + b1)·W2 + b2, x: float32[?, 4], y: float32[?, 2], fixed seeded weights.

    `extra_identity` adds an Identity at the end: a different file holding the same function, so its
    initializers sit at other byte offsets (as a lowered edge file's do).
    """
    import numpy as np
    from onnx import numpy_helper

    rng = np.random.default_rng(7)
    weights = {
        "dense.weight": rng.normal(size=(4, 8)).astype(np.float32),
        "dense.bias": rng.normal(size=8).astype(np.float32),
        "head.weight": rng.normal(size=(8, 2)).astype(np.float32),
        "head.bias": rng.normal(size=2).astype(np.float32),
    }
    nodes = [
        helper.make_node("Gemm", ["x", "dense.weight", "dense.bias"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "head.weight", "head.bias"], ["z" if extra_identity else "y"]),
    ]
    if extra_identity:
        nodes.append(helper.make_node("Identity", ["z"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", opset)])


def write_trainable_version_dir(folder: Path, name: str = "mlp", trainable: tuple[str, ...] = ("head.weight", "head.bias")) -> Path:
    """A version folder as `edgecloud export --trainable head` writes it (docs/training.md): model.onnx,
    a distinct model.edge.onnx, sample.json and model.json with `training.parameters[].locations`.

    No train.onnx: these tests are about the inference files a round patches; the step file is only carried.
    """
    import numpy as np
    from onnx import numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    files = {"model.onnx": mlp_model(), "model.edge.onnx": mlp_model(opset=9, extra_identity=True)}
    locations: dict[str, dict[str, dict[str, int]]] = {p: {} for p in trainable}
    for file, model in files.items():
        raw = model.SerializeToString()
        (folder / file).write_bytes(raw)
        for init in model.graph.initializer:
            if init.name in trainable:
                offset = raw.find(init.raw_data)
                assert offset >= 0 and raw.find(init.raw_data, offset + 1) < 0, init.name
                locations[init.name][file] = {"offset": offset, "length": len(init.raw_data)}
    sample = np.random.default_rng(3).normal(size=(2, 4)).astype(np.float32)
    (folder / "sample.json").write_text(
        json.dumps({"inputs": {"x": {"dtype": "float32", "shape": [2, 4], "data": sample.ravel().tolist()}}})
    )
    cloud = files["model.onnx"]
    shapes = {init.name: list(numpy_helper.to_array(init).shape) for init in cloud.graph.initializer}
    described = {
        "model.onnx": model_json.file_entry(folder / "model.onnx", role="cloud"),
        "model.edge.onnx": model_json.file_entry(folder / "model.edge.onnx", role="edge"),
        "sample.json": model_json.file_entry(folder / "sample.json"),
    }
    # No train.onnx, so only the part of `training` a round reads (the builder's full entry names the step's file).
    training = {
        "trainable": "head",
        "parameters": [{"name": p, "shape": shapes[p], "dtype": "float32", "locations": locations[p]} for p in trainable],
    }
    manifest = describe(folder, name, cloud, described, edge_entry("model.edge.onnx"), training=training)
    model_json.write(folder / model_json.MANIFEST_NAME, manifest)
    return folder
