"""model.json helpers: signatures with null free dims, hashes, latest.json."""

from __future__ import annotations

import hashlib
import json

import onnx
from onnx import TensorProto, helper

from export.manifest import file_entry, graph_inputs, tensor_specs
from registry import Registry
from tests.builders import write_version_dir


def _model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4], [1, 2, 3, 4])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4]))  # old-exporter style
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13)])


def test_signature_skips_initializers_and_uses_null_for_free_dims():
    model = _model()
    assert tensor_specs(graph_inputs(model)) == [{"name": "x", "dtype": "float32", "shape": [None, 4]}]


def test_file_entry_and_latest(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert file_entry(path) == {"sha256": hashlib.sha256(b"abc").hexdigest(), "size": 3}
    for version in ("1", "2", "10"):
        write_version_dir(tmp_path / "m" / version, name="m")
    (tmp_path / "m" / "11").mkdir()  # no model.json yet: not a version
    registry = Registry(tmp_path)
    registry.set_latest("m", registry.versions("m")[-1])  # the newest by number, not by name
    latest = json.loads((tmp_path / "m" / "latest.json").read_text())
    assert latest == {"name": "m", "version": "10", "manifest": "10/model.json", "versions": ["1", "2", "10"]}
