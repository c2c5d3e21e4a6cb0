"""Version N+1 from new trainable parameters: byte-patched files, proven, with provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from export.errors import BadInputError, ExportError
from export.federated_version import trainable_parameters, write_federated_version
from tests.builders import write_trainable_version_dir

PROVENANCE = {"round": 1, "base_version": "1", "clients": 3, "samples": 30, "aggregation": "fedavg", "clip": None, "dp": None}


def initializers(path: Path) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in onnx.load(str(path)).graph.initializer}


def test_new_version_is_the_base_with_only_the_trainable_bytes_changed(tmp_path: Path) -> None:
    base_dir = write_trainable_version_dir(tmp_path / "mlp" / "1")
    base = trainable_parameters(base_dir)
    new = {name: (value + 0.25).astype(np.float32) for name, value in base.items()}
    new_dir = write_federated_version(tmp_path / "mlp", "1", new, PROVENANCE)
    assert new_dir.name == "2"
    manifest = json.loads((new_dir / "model.json").read_text())
    for file in ("model.onnx", "model.edge.onnx"):
        after, before = initializers(new_dir / file), initializers(base_dir / file)
        assert all(np.array_equal(after[n], new[n]) for n in new)
        assert np.array_equal(after["dense.weight"], before["dense.weight"])
        old, patched = (base_dir / file).read_bytes(), (new_dir / file).read_bytes()
        changed = {i for i, (a, b) in enumerate(zip(old, patched)) if a != b}
        ranges = set()
        for p in manifest["training"]["parameters"]:
            loc = p["locations"][file]
            ranges |= set(range(loc["offset"], loc["offset"] + loc["length"]))
        assert len(old) == len(patched) and changed and changed <= ranges
        assert manifest["files"][file]["sha256"] != json.loads((base_dir / "model.json").read_text())["files"][file]["sha256"]
    assert manifest["version"] == "2" and manifest["federated"]["round"] == 1 and manifest["federated"]["clients"] == 3
    assert manifest["parity"]["federated_cloud_vs_edge"]["passed"] is True
    # It serves the new values: the head's bias moved every output by +0.25 plus the weight change.
    x = np.ones((1, 4), np.float32)
    run = lambda d: ort.InferenceSession(str(d / "model.onnx")).run(None, {"x": x})[0]  # noqa: E731
    hidden = np.maximum(x @ initializers(base_dir / "model.onnx")["dense.weight"] + initializers(base_dir / "model.onnx")["dense.bias"], 0)
    np.testing.assert_allclose(run(new_dir), hidden @ new["head.weight"] + new["head.bias"], rtol=1e-5, atol=1e-5)
    assert not (tmp_path / "mlp" / "latest.json").exists()  # the caller moves it once the version is served


def test_wrong_parameters_write_nothing(tmp_path: Path) -> None:
    write_trainable_version_dir(tmp_path / "mlp" / "1")
    base = trainable_parameters(tmp_path / "mlp" / "1")
    with pytest.raises(BadInputError, match="not the trainable ones"):
        write_federated_version(tmp_path / "mlp", "1", {"head.bias": base["head.bias"]}, PROVENANCE)
    broken = dict(base, **{"head.bias": np.array([np.nan, 0], np.float32)})
    with pytest.raises(BadInputError, match="head.bias"):
        write_federated_version(tmp_path / "mlp", "1", broken, PROVENANCE)
    assert sorted(p.name for p in (tmp_path / "mlp").iterdir()) == ["1"]


def test_a_location_that_misses_its_initializer_is_caught(tmp_path: Path) -> None:
    version = write_trainable_version_dir(tmp_path / "mlp" / "1")
    manifest = json.loads((version / "model.json").read_text())
    manifest["training"]["parameters"][1]["locations"]["model.edge.onnx"]["offset"] += 4
    (version / "model.json").write_text(json.dumps(manifest))
    base = trainable_parameters(version)
    with pytest.raises(ExportError, match="model.edge.onnx"):
        write_federated_version(tmp_path / "mlp", "1", {n: v + 1 for n, v in base.items()}, PROVENANCE)
    assert sorted(p.name for p in (tmp_path / "mlp").iterdir()) == ["1"]


def unlocated_edge_file(folder: Path) -> Path:
    """The MLP version as `--trainable all` over an LSTM leaves it: no parameter located in model.edge.onnx."""
    version = write_trainable_version_dir(folder)
    manifest = json.loads((version / "model.json").read_text())
    for parameter in manifest["training"]["parameters"]:
        del parameter["locations"]["model.edge.onnx"]
    (version / "model.json").write_text(json.dumps(manifest))
    return version


def test_an_edge_file_without_locations_is_lowered_again_from_the_new_cloud_file(tmp_path: Path) -> None:
    base_dir = unlocated_edge_file(tmp_path / "mlp" / "1")
    new = {name: (value + 0.25).astype(np.float32) for name, value in trainable_parameters(base_dir).items()}
    new_dir = write_federated_version(tmp_path / "mlp", "1", new, PROVENANCE)
    manifest = json.loads((new_dir / "model.json").read_text())
    assert manifest["federated"]["patched"] == ["model.onnx"] and manifest["federated"]["relowered"] == ["model.edge.onnx"]
    edge = onnx.load(str(new_dir / "model.edge.onnx"))
    assert {n.op_type for n in edge.graph.node} <= {n.op_type for n in onnx.load(str(base_dir / "model.edge.onnx")).graph.node}
    x = np.random.default_rng(5).normal(size=(3, 4)).astype(np.float32)
    run = lambda path: ort.InferenceSession(str(path)).run(None, {"x": x})[0]  # noqa: E731
    np.testing.assert_allclose(run(new_dir / "model.edge.onnx"), run(new_dir / "model.onnx"), rtol=1e-5, atol=1e-6)
    assert np.abs(run(new_dir / "model.edge.onnx") - run(base_dir / "model.edge.onnx")).max() > 0.1


def test_a_relowered_edge_file_with_an_operator_the_browser_never_ran_is_refused(tmp_path: Path) -> None:
    base_dir = unlocated_edge_file(tmp_path / "mlp" / "1")
    verified = onnx.load(str(base_dir / "model.edge.onnx"))
    for node in verified.graph.node:
        if node.op_type == "Relu":
            node.op_type = "Sigmoid"  # what the browser verified had no Relu
    onnx.save(verified, base_dir / "model.edge.onnx")
    base = trainable_parameters(base_dir)
    with pytest.raises(ExportError, match=r"verified: it runs Relu \(ai.onnx\), which that file does not; version not written"):
        write_federated_version(tmp_path / "mlp", "1", {n: v + 1 for n, v in base.items()}, PROVENANCE)
    assert sorted(p.name for p in (tmp_path / "mlp").iterdir()) == ["1"]
