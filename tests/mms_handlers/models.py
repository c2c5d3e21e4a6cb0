"""Small ONNX models built with onnx.helper, written as registry folders (model.onnx + model.json).

Handler tests need no training framework: each model here is a few nodes, written to a registry
folder by `tests.builders.write_version_dir` (the signature read off the graph). `npy`/`npz` encode the NumPy request bodies
they are fed (written with numpy, not with the codec under test).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.builders import write_version_dir

_ELEM = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "int64": TensorProto.INT64}


def npy(array: np.ndarray) -> bytes:
    """`array` as a .npy file's bytes."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz(**arrays: np.ndarray) -> bytes:
    """The arrays as an .npz file's bytes, keyed by name."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _value(name: str, dtype: str, shape: list[int | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, _ELEM[dtype], shape)


def _write(root: Path, name: str, model: onnx.ModelProto, serving: dict[str, Any] | None = None) -> Path:
    return write_version_dir(root / name / "1", name, model, serving)


def mlp_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)


def mlp(root: Path, name: str = "mlp", serving: dict[str, Any] | None = None) -> Path:
    """y = tanh(x @ W + b): float32[?, 4] → float32[?, 3]; batchable along axis 0."""
    weights, bias = mlp_weights()
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["a"]), helper.make_node("Tanh", ["a"], ["y"])],
        name,
        [_value("x", "float32", [None, 4])],
        [_value("y", "float32", [None, 3])],
        [
            helper.make_tensor("W", TensorProto.FLOAT, weights.shape, weights.ravel()),
            helper.make_tensor("b", TensorProto.FLOAT, bias.shape, bias),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return _write(root, name, model, serving)


def mlp_reference(x: np.ndarray) -> np.ndarray:
    weights, bias = mlp_weights()
    return np.tanh(x.astype(np.float32) @ weights + bias)


def two_in_two_out(root: Path, name: str = "pair") -> Path:
    """a float32[?, 2], n int64[?, 1] → sum float32[?, 2] = a + 1, twice int64[?, 1] = 2n."""
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    two = helper.make_tensor("two", TensorProto.INT64, [], [2])
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "one"], ["sum"]), helper.make_node("Mul", ["n", "two"], ["twice"])],
        name,
        [_value("a", "float32", [None, 2]), _value("n", "int64", [None, 1])],
        [_value("sum", "float32", [None, 2]), _value("twice", "int64", [None, 1])],
        [one, two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return _write(root, name, model)


def fixed_batch(root: Path, name: str = "fixed") -> Path:
    """x float32[2, 3] → y = x * 3 (no free batch dimension: requests run one by one)."""
    three = helper.make_tensor("three", TensorProto.FLOAT, [], [3.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "three"], ["y"])], name, [_value("x", "float32", [2, 3])], [_value("y", "float32", [2, 3])], [three]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return _write(root, name, model)


def not_for_mxnet(root: Path, name: str = "nomx") -> Path:
    """Shape → ConstantOfShape: onnxruntime runs it, MXNet 1.9's importer has no ConstantOfShape."""
    graph = helper.make_graph(
        [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ConstantOfShape", ["s"], ["y"])],
        name,
        [_value("x", "float32", [None, 4])],
        [_value("y", "float32", [None, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return _write(root, name, model)


EXTERNAL_WEIGHTS = np.array([1.0, 2.0, 3.0, 4.0], np.float32)


def external_data_model(location: str) -> onnx.ModelProto:
    """y = x + W, float32[?, 4], with W's four floats stored outside the ONNX file at `location`."""
    weights = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", str(EXTERNAL_WEIGHTS.nbytes))):
        weights.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "W"], ["y"])],
        "external",
        [_value("x", "float32", [None, 4])],
        [_value("y", "float32", [None, 4])],
        [weights],
    )
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13)])


def external_data_version(root: Path, location: str, name: str = "external") -> Path:
    """A registry folder whose model.onnx keeps W at `location` (not checked: it may point anywhere);
    the weights file itself is the caller's to write."""
    return write_version_dir(root / name / "1", name, external_data_model(location), checked=False)
