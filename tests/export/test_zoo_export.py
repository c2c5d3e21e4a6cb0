"""Every zoo model, from every framework, goes through `edgecloud export` with parity and the same model.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from edgecloud.cli import main as cli
from tests.export.conftest import ZOO_PARITY
from tests.export.zoo import ZOO


def zoo_params():
    return [pytest.param(name, marks=getattr(pytest.mark, entry.framework)) for name, entry in ZOO.items()]


@pytest.fixture(scope="module")
def zoo_registry(workdir: Path) -> Path:
    path = workdir / "zoo-registry"
    path.mkdir(exist_ok=True)
    return path


@pytest.mark.parametrize("name", zoo_params())
def test_zoo_model_exports_with_parity(name, zoo_model, zoo_export):
    model_path, sample_path = zoo_model(name)
    entry = ZOO[name]
    code, err, version_dir = zoo_export(name)
    assert code == 0, err

    manifest = json.loads((version_dir / "model.json").read_text())
    assert manifest["source"]["framework"] == entry.framework
    assert manifest["source"]["framework_version"]
    assert manifest["source"]["file"] == model_path.name
    assert manifest["opset"] == 13
    parity = manifest["parity"]["source_vs_onnxruntime"]
    assert parity["passed"] is True
    assert parity["max_abs_diff"] <= 1e-5
    assert parity["inputs_compared"] >= 33
    assert set(parity["per_output"]) == {output["name"] for output in manifest["outputs"]}
    ZOO_PARITY[name] = (entry.framework, parity["max_abs_diff"], parity["inputs_compared"])
    digest = hashlib.sha256((version_dir / "model.onnx").read_bytes()).hexdigest()
    assert manifest["files"]["model.onnx"]["sha256"] == digest

    sample = np.load(sample_path)
    (spec,) = manifest["inputs"]
    assert spec["dtype"] == "float32"
    assert spec["shape"][0] is None, "the batch axis must be free"
    assert spec["shape"][1:] == list(sample.shape[1:])
    for output in manifest["outputs"]:
        assert output["shape"][0] is None

    # The free batch axis really is free: three rows at once answer like three single rows.
    session = onnxruntime.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    rows = np.random.default_rng(5).standard_normal((3, *sample.shape[1:])).astype("float32")
    together = session.run(None, {spec["name"]: rows})
    one_by_one = [session.run(None, {spec["name"]: rows[i : i + 1]}) for i in range(3)]
    for k, batched in enumerate(together):
        assert batched.shape[0] == 3
        single = np.concatenate([result[k] for result in one_by_one])
        assert np.max(np.abs(batched.astype("float64") - single.astype("float64"))) <= 1e-5


@pytest.mark.sklearn
def test_classifier_outputs_plain_label_and_probabilities(zoo_model, zoo_registry, capsys):
    """No ZipMap: the label is an int64 tensor compared exactly, probabilities a float tensor."""
    model_path, sample_path = zoo_model("sklearn_logistic")
    assert cli(["export", str(model_path), "--name", "logistic_nosample", "--out", str(zoo_registry), "--trust-pickle"]) == 0
    manifest = json.loads((zoo_registry / "logistic_nosample" / "1" / "model.json").read_text())
    outputs = {output["name"]: output for output in manifest["outputs"]}
    assert outputs["label"]["dtype"] == "int64"
    assert outputs["probabilities"] == {"name": "probabilities", "dtype": "float32", "shape": [None, 3]}
    assert manifest["parity"]["source_vs_onnxruntime"]["exact_outputs"] == ["label"]
    assert manifest["parity"]["source_vs_onnxruntime"]["per_output"]["label"] == 0.0


def test_every_framework_has_a_converter_picked_by_file_type():
    from export.converter import framework_names, pick

    assert framework_names() == ["keras", "mxnet", "onnx", "sklearn", "torch"]
    expected = {
        "m.keras": "keras",
        "m.pt2": "torch",
        "m.pt": "torch",
        "m.pth": "torch",
        "m.joblib": "sklearn",
        "m.pkl": "sklearn",
        "net-symbol.json": "mxnet",
        "m.onnx": "onnx",
    }
    assert {name: pick("auto", Path(name)).name for name in expected} == expected


def test_zoo_covers_four_frameworks_with_at_least_twelve_models():
    frameworks = {entry.framework for entry in ZOO.values()}
    assert frameworks == {"keras", "torch", "sklearn", "mxnet"}
    assert len(ZOO) >= 12
