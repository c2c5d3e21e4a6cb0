"""Small ONNX models for the browser tests, written straight into a registry folder.

Built with onnx.helper (no training framework to import, so fixtures take milliseconds) and
described by a model.json of the same shape `edgecloud export` writes, with the edge entry
(runtime, verified backends) set the way each test needs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.manifest import file_entry, graph_inputs, tensor_specs, write_manifest
from registry import Registry
from tests.builders import describe, edge_entry

OPSET = 13
IR_VERSION = 8  # onnx 1.23 stamps IR 14, which onnxruntime 1.31 refuses
WINDOW = 64  # the forecaster sees this many samples ...
HORIZON = 8  # ... and forecasts this many after them


def pulse_signal(length: int, period: float = 50.0, noise: float = 0.02, seed: int = 0) -> np.ndarray:
    """An ECG-like pulse train (a sharp peak and a wider wave per beat, plus noise), the shape the
    demo page draws, so the forecaster tests fit on something periodic rather than random numbers."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    phase = (t % period) / period
    peak = np.exp(-(((phase - 0.3) / 0.02) ** 2))
    wave = 0.3 * np.exp(-(((phase - 0.6) / 0.08) ** 2))
    return (peak + wave + noise * rng.standard_normal(length)).astype(np.float32)


def windows(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inputs [n, WINDOW], targets [n, HORIZON]): every window of the signal and what follows it."""
    count = len(signal) - WINDOW - HORIZON
    x = np.stack([signal[i : i + WINDOW] for i in range(count)])
    y = np.stack([signal[i + WINDOW : i + WINDOW + HORIZON] for i in range(count)])
    return x, y


def _model(nodes, inputs, outputs, initializers) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def fitted_forecaster(bias_shift: float = 0.0) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """window[?, 64] → forecast[?, 8]: a ridge regression fitted on the demo's ECG-like signal.

    Returns the model and its (weights, bias) so tests can compute the expected answer.
    """
    x, y = windows(pulse_signal(3000, seed=0))
    design = np.hstack([x, np.ones((len(x), 1), np.float32)]).astype(np.float64)
    solution = np.linalg.solve(design.T @ design + 1e-3 * np.eye(design.shape[1]), design.T @ y)
    weights = solution[:-1].astype(np.float32)
    bias = (solution[-1] + bias_shift).astype(np.float32)
    model = _model(
        [helper.make_node("MatMul", ["window", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["forecast"])],
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, [None, WINDOW])],
        [helper.make_tensor_value_info("forecast", TensorProto.FLOAT, [None, HORIZON])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    return model, weights, bias


def three_d(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same forecaster taking window[?, T, 1] (as a recurrent or conv model would): Reshape first."""
    wide = onnx.ModelProto()
    wide.CopyFrom(model)
    source = wide.graph.input[0]
    steps = source.type.tensor_type.shape.dim[1].dim_value
    wide.graph.node[0].input[0] = "flat_window"
    wide.graph.node.insert(0, helper.make_node("Reshape", [source.name, "to_rows"], ["flat_window"]))
    wide.graph.initializer.append(numpy_helper.from_array(np.array([-1, steps], np.int64), "to_rows"))
    wide.graph.input[0].CopyFrom(helper.make_tensor_value_info(source.name, TensorProto.FLOAT, [None, steps, 1]))
    onnx.checker.check_model(wide, full_check=True)
    return wide


def batch_of_one(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with a final Reshape to [1, ...]: loads and runs for one row, throws for more."""
    edge = onnx.ModelProto()
    edge.CopyFrom(model)
    output = edge.graph.output[0]
    width = output.type.tensor_type.shape.dim[1].dim_value
    edge.graph.node[-1].output[0] = "before_reshape"
    edge.graph.node.append(helper.make_node("Reshape", ["before_reshape", "one_row"], [output.name]))
    edge.graph.initializer.append(numpy_helper.from_array(np.array([1, width], np.int64), "one_row"))
    onnx.checker.check_model(edge, full_check=True)
    return edge


def lstm_model(steps: int = 16, hidden: int = 4) -> onnx.ModelProto:
    """sequence[?, steps, 1] → state[?, hidden] through an ONNX LSTM (ONNX.js has no LSTM kernel)."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((1, 4 * hidden, 1)).astype(np.float32) * 0.5
    r = rng.standard_normal((1, 4 * hidden, hidden)).astype(np.float32) * 0.5
    b = np.zeros((1, 8 * hidden), np.float32)
    return _model(
        [
            helper.make_node("Transpose", ["sequence"], ["time_major"], perm=[1, 0, 2]),
            helper.make_node("LSTM", ["time_major", "W", "R", "B"], ["", "y_h"], hidden_size=hidden),
            helper.make_node("Reshape", ["y_h", "to_2d"], ["state"]),
        ],
        [helper.make_tensor_value_info("sequence", TensorProto.FLOAT, [None, steps, 1])],
        [helper.make_tensor_value_info("state", TensorProto.FLOAT, [None, hidden])],
        [
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(r, "R"),
            numpy_helper.from_array(b, "B"),
            numpy_helper.from_array(np.array([-1, hidden], np.int64), "to_2d"),
        ],
    )


def heavy_model(width: int = 1024, layers: int = 2) -> onnx.ModelProto:
    """x[?, width] → y[?, width]: `layers` times MatMul + Tanh with one shared weight (slow on purpose)."""
    weight = (np.random.default_rng(9).standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
    nodes, previous = [], "x"
    for i in range(layers):
        name = "y" if i == layers - 1 else f"t{i}"
        nodes += [helper.make_node("MatMul", [previous, "W"], [f"m{i}"]), helper.make_node("Tanh", [f"m{i}"], [name])]
        previous = name
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, width])],
        [numpy_helper.from_array(weight, "W")],
    )


def verified_table(file: str, runtime: str = "onnxjs", **backends: bool) -> dict[str, Any]:
    """model.json's `edge.verified` as `edgecloud verify` records it, for the given backends."""
    results = [{"runtime": runtime, "backend": backend, "passed": ok} for backend, ok in backends.items()]
    return {"file": file, "passed": all(backends.values()), "results": results}


def write_version(
    registry: Path,
    name: str,
    version: str,
    model: onnx.ModelProto,
    *,
    runtime: str = "onnxjs",
    verified: dict[str, Any] | None = None,
    edge_model: onnx.ModelProto | None = None,
) -> Path:
    """REGISTRY/NAME/VERSION/{model.onnx, model.json} and NAME/latest.json, like `edgecloud export`.

    With `edge_model`, the browser gets its own file (model.edge.onnx), as the lowering passes write it.
    """
    version_dir = Path(registry) / name / version
    if version_dir.exists():
        shutil.rmtree(version_dir)
    version_dir.mkdir(parents=True)
    onnx.save(model, version_dir / "model.onnx")
    files = {"model.onnx": file_entry(version_dir / "model.onnx", role="cloud+edge")}
    edge_file, pinned = "model.onnx", None
    if edge_model is not None:
        edge_file = "model.edge.onnx"
        onnx.save(edge_model, version_dir / edge_file)
        files = {
            "model.onnx": file_entry(version_dir / "model.onnx", role="cloud"),
            edge_file: file_entry(version_dir / edge_file, role="edge"),
        }
        if tensor_specs(graph_inputs(edge_model)) != tensor_specs(graph_inputs(model)):
            pinned = tensor_specs(graph_inputs(edge_model))  # as export/edge/artifact.py records pinning
    edge = edge_entry(edge_file, runtime, verified=verified, inputs=pinned)
    manifest = describe(version_dir, name, model, files, edge)
    write_manifest(version_dir, manifest)
    versions = Registry(registry)
    versions.set_latest(name, versions.versions(name)[-1])
    return version_dir


def pinned_to_one_row(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with its batch dimension fixed at 1, as `pin-free-dims` writes a browser file."""
    edge = onnx.ModelProto()
    edge.CopyFrom(model)
    for value in (*edge.graph.input, *edge.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.checker.check_model(edge, full_check=True)
    return edge


def tamper(version_dir: Path, file: str = "model.onnx") -> None:
    """Change one byte of a registry file so it no longer matches model.json's SHA-256."""
    path = Path(version_dir) / file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
