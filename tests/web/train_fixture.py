"""A plumbing fixture for the browser trainer: the web tests' forecaster (window[?, 64] →
forecast[?, 8], initializers W and b) made trainable with a hand-written step graph that follows
docs/training.md: a linear head, MSE, SGD with momentum, fixed batch, example weights.

This is NOT the exporter's output (that one comes from an autodiff and is proven against the
framework); it only lets the browser side be built and tested against the contract. `reference_steps`
is its numpy twin, so the plumbing tests compare the browser against something independent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.manifest import file_entry, read_manifest, write_manifest
from registry import model_json

from .registry_models import HORIZON, WINDOW

TRAIN_OPSET = 11  # ReduceSum/ReduceMean/Unsqueeze with axes as attributes (what ONNX.js knows)
BATCH = 8
MOMENTUM = 0.9
LEARNING_RATE = 0.05
PARAMETERS = ("W", "b")


def step_graph(batch: int = BATCH) -> onnx.ModelProto:
    """(window, target.forecast, example_weight, learning_rate, W, b, v.W, v.b) → (loss, W', b', v.W', v.b')."""
    f = TensorProto.FLOAT
    node = helper.make_node
    nodes = [
        node("MatMul", ["window", "param.W"], ["xw"]),
        node("Add", ["xw", "param.b"], ["pred"]),
        node("Sub", ["pred", "target.forecast"], ["d"]),
        node("Unsqueeze", ["example_weight"], ["w2"], axes=[1]),
        node("ReduceSum", ["example_weight"], ["sw"], axes=[0], keepdims=1),
        node("Mul", ["d", "d"], ["dd"]),
        node("ReduceMean", ["dd"], ["per_row"], axes=[1], keepdims=1),
        node("Mul", ["per_row", "w2"], ["weighted"]),
        node("ReduceSum", ["weighted"], ["total"], axes=[0], keepdims=0),
        node("Div", ["total", "sw"], ["loss"]),
        node("Div", ["two_over_k", "sw"], ["scale"]),
        node("Mul", ["d", "w2"], ["dw"]),
        node("Mul", ["dw", "scale"], ["g"]),
        node("Transpose", ["window"], ["xt"], perm=[1, 0]),
        node("MatMul", ["xt", "g"], ["gW"]),
        node("ReduceSum", ["g"], ["gb"], axes=[0], keepdims=0),
    ]
    for name in PARAMETERS:
        nodes += [
            node("Mul", ["momentum", f"state.v.{name}"], [f"mv.{name}"]),
            node("Add", [f"mv.{name}", f"g{name}"], [f"new.v.{name}"]),
            node("Mul", ["learning_rate", f"new.v.{name}"], [f"delta.{name}"]),
            node("Sub", [f"param.{name}", f"delta.{name}"], [f"new.{name}"]),
        ]
    shapes = {"W": [WINDOW, HORIZON], "b": [HORIZON]}
    inputs = [
        helper.make_tensor_value_info("window", f, [batch, WINDOW]),
        helper.make_tensor_value_info("target.forecast", f, [batch, HORIZON]),
        helper.make_tensor_value_info("example_weight", f, [batch]),
        helper.make_tensor_value_info("learning_rate", f, [1]),
        *[helper.make_tensor_value_info(f"param.{n}", f, shapes[n]) for n in PARAMETERS],
        *[helper.make_tensor_value_info(f"state.v.{n}", f, shapes[n]) for n in PARAMETERS],
    ]
    outputs = [
        helper.make_tensor_value_info("loss", f, [1]),
        *[helper.make_tensor_value_info(f"new.{n}", f, shapes[n]) for n in PARAMETERS],
        *[helper.make_tensor_value_info(f"new.v.{n}", f, shapes[n]) for n in PARAMETERS],
    ]
    constants = [
        numpy_helper.from_array(np.array([2.0 / HORIZON], np.float32), "two_over_k"),
        numpy_helper.from_array(np.array([MOMENTUM], np.float32), "momentum"),
    ]
    graph = helper.make_graph(nodes, "train_step", inputs, outputs, initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", TRAIN_OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def locate(path: Path, model: onnx.ModelProto, name: str) -> dict[str, int]:
    """Byte range of initializer `name`'s raw_data inside the saved file (must be unique there)."""
    (init,) = [i for i in model.graph.initializer if i.name == name]
    raw = init.raw_data
    data = path.read_bytes()
    offset = data.find(raw)
    if offset < 0 or data.find(raw, offset + 1) >= 0:
        raise AssertionError(f"{name}'s bytes are not found exactly once in {path}")
    return {"offset": offset, "length": len(raw)}


def make_trainable(version_dir: Path, batch: int = BATCH) -> dict[str, Any]:
    """Write train.onnx next to model.onnx and the contract's `training` entry into model.json."""
    version_dir = Path(version_dir)
    manifest = read_manifest(version_dir)
    step = step_graph(batch)
    onnx.save(step, version_dir / "train.onnx")
    inference_files = sorted({manifest["cloud"]["file"], manifest["edge"]["file"]})
    models = {name: onnx.load(version_dir / name) for name in inference_files}
    shapes = {"W": [WINDOW, HORIZON], "b": [HORIZON]}
    manifest["files"]["train.onnx"] = file_entry(version_dir / "train.onnx", role="train")
    edge = model_json.edge(file="train.onnx", runtime="onnxjs", lowered=False, passes=[], blockers={}, backends=["cpu", "wasm"])
    names = {
        "parameters": [
            {
                "name": n,
                "shape": shapes[n],
                "dtype": "float32",
                "input": f"param.{n}",
                "output": f"new.{n}",
                "locations": {f: locate(version_dir / f, models[f], n) for f in inference_files},
            }
            for n in PARAMETERS
        ],
        "state": [
            {
                "name": f"sgd.v.{n}",
                "parameter": n,
                "shape": shapes[n],
                "dtype": "float32",
                "input": f"state.v.{n}",
                "output": f"new.v.{n}",
                "init": 0.0,
            }
            for n in PARAMETERS
        ],
        "inputs": {
            "data": [{"name": "window", "input": "window", "dtype": "float32", "shape": [batch, WINDOW]}],
            "targets": [
                {"output": "forecast", "input": "target.forecast", "dtype": "float32", "shape": [batch, HORIZON], "encoding": "value"}
            ],
            "example_weight": "example_weight",
            "learning_rate": "learning_rate",
        },
        "outputs": {"loss": "loss"},
    }
    manifest["training"] = model_json.training(
        file="train.onnx",
        edge=edge,
        trainable="head",
        batch_size=batch,
        names=names,
        loss={"kind": "mse", "inferred": True},
        optimizer={"kind": "sgd", "flavor": "numpy", "learning_rate": LEARNING_RATE, "momentum": MOMENTUM},
        parity={"against": "plumbing fixture (tests/web/train_fixture.py)", "passed": True},
    )
    write_manifest(version_dir, manifest)
    return manifest


def epoch_orders(count: int, epochs: int, shuffle: bool, seed: int) -> list[list[int]]:
    """The browser's example order per epoch (web_onnxjs/src/prng.js, mirrored for the reference)."""
    state = seed & 0xFFFFFFFF
    orders = []
    for _ in range(epochs):
        order = list(range(count))
        if shuffle:
            for i in range(count - 1, 0, -1):
                state, value = _mulberry32(state)
                j = int(value * (i + 1))
                order[i], order[j] = order[j], order[i]
        orders.append(order)
    return orders


def _mulberry32(state: int) -> tuple[int, float]:
    state = (state + 0x6D2B79F5) & 0xFFFFFFFF
    t = state
    t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
    t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
    return state, ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296


def reference_steps(weights, bias, x, y, *, epochs, batch_size, learning_rate, shuffle=False, seed=0):
    """numpy SGD with momentum on the same batches: (W, b, losses), float64 throughout."""
    params = {"W": weights.astype(np.float64), "b": bias.astype(np.float64)}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    losses = []
    for order in epoch_orders(len(x), epochs, shuffle, seed):
        for start in range(0, len(x), batch_size):
            rows = order[start : start + batch_size]
            xb, yb = x[rows].astype(np.float64), y[rows].astype(np.float64)
            d = xb @ params["W"] + params["b"] - yb
            losses.append(float(np.mean(d * d)))
            g = 2.0 * d / (HORIZON * len(rows))
            grads = {"W": xb.T @ g, "b": g.sum(axis=0)}
            for k in params:
                velocity[k] = MOMENTUM * velocity[k] + grads[k]
                params[k] = params[k] - learning_rate * velocity[k]
    return params["W"], params["b"], losses
