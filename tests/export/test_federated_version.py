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
