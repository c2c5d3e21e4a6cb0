"""Every writer of model.json writes what every reader accepts: export (with a lowered browser
file), the training step (with its lowered browser step), a federated version, and `edgecloud
verify` recording both browser tables. Each manifest is read back through `registry.model_json.read`
(the validation every reader runs), from the file on disk, not from what the writer returned."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from registry import model_json

pytestmark = pytest.mark.torch


CHECK = Path(__file__).resolve().parents[2] / "web_onnxjs" / "src" / "manifest-check.js"


def read(version_dir: Path) -> dict:
    """The manifest as every Python reader gets it, after the page's own check accepted it too."""
    path = version_dir / model_json.MANIFEST_NAME
    node = shutil.which("node")
    assert node, "node is part of the setup (make web)"
    script = (
        f"import {{ checkManifest }} from {str(CHECK)!r}; import {{ readFileSync }} from 'node:fs';"
        f"checkManifest(JSON.parse(readFileSync({str(path)!r}, 'utf8')));"
    )
    result = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"the page refuses {path}: {result.stderr.strip()[-400:]}"
    return model_json.read(path)


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An .onnx export that lowering rewrites (HardSwish/HardSigmoid): model.onnx + model.edge.onnx."""
    from export.pipeline import export_model
    from tests.export import onnx_graphs

    folder = tmp_path_factory.mktemp("writers-lowered")
    model, sample = onnx_graphs.hard_activations()
    onnx.save(model, folder / "hard.onnx")
    np.save(folder / "x.npy", sample["x"])
    result = export_model(
        folder / "hard.onnx", name="hard", version="1", out=folder / "registry", framework="onnx", sample=folder / "x.npy"
    )
    return result.version_dir


@pytest.fixture(scope="module")
def trainable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PyTorch export with a training step whose ReLU backward is lowered for ONNX.js (train.edge.onnx)."""
    import torch

    from export.torch_module import export_torch_module

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))
    out = tmp_path_factory.mktemp("writers-trainable")
    return export_torch_module(
        module, torch.randn(1, 5), name="mlp", version="1", out=out / "registry", trainable="last:2", train_batch=4
    ).version_dir


def test_export_and_lowering_write_a_valid_manifest(lowered: Path) -> None:
    manifest = read(lowered)
    assert manifest["edge"]["lowered"] and manifest["edge"]["file"] == "model.edge.onnx"
    assert manifest["files"]["model.edge.onnx"]["role"] == "edge"
    assert model_json.read_latest(lowered.parent / model_json.LATEST_NAME)["version"] == "1"


def test_the_training_step_writes_a_valid_manifest(trainable: Path) -> None:
    training = read(trainable)["training"]
    assert training["file"] == "train.onnx" and training["edge"]["file"] == "train.edge.onnx"
    assert all(set(p["locations"]) == {"model.onnx"} for p in training["parameters"])


def test_a_federated_version_writes_a_valid_manifest(trainable: Path) -> None:
    from export.federated_version import trainable_parameters, write_federated_version

    moved = {name: value + 0.01 for name, value in trainable_parameters(trainable).items()}
    new = write_federated_version(trainable.parent, "1", moved, {"round": 1, "base_version": "1", "updates": 2})
    manifest = read(new)
    assert manifest["version"] == new.name == "2"
    assert manifest["federated"]["round"] == 1 and manifest["federated"]["browser_verified_on"] == "1"


@pytest.mark.integration
def test_verify_records_valid_tables(lowered: Path, trainable: Path, browser_context) -> None:
    from edgecloud.edge_verify import verify_version
    from edgecloud.train_verify import verify_training

    verify_version(lowered, random_inputs=1, repeats=1, context=browser_context)
    verify_training(trainable, random_inputs=1, repeats=1, context=browser_context)
    edge = read(lowered)["edge"]
    assert edge["verified"]["results"] and "ranking" in edge
    step = read(trainable)["training"]["edge"]
    assert step["verified"]["results"] and "ranking" in step
