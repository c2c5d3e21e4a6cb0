"""PyTorch modules: last:N and all, SGD and Adam (PyTorch's flavour), proven against torch.optim;
a padded short batch is the step on its real rows; Adam keeps a zero-gradient parameter finite;
the step through a ReLU is lowered for ONNX.js."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.train.runner import base_parameters, train

pytestmark = pytest.mark.torch
BATCH = 8


def mlp():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))


@pytest.fixture(scope="module")
def exported(workdir: Path) -> dict[str, tuple[Path, object]]:
    import torch

    from export.torch_module import export_torch_module

    found = {}
    for version, (trainable, optimizer) in enumerate([("last:2", "sgd"), ("all", "adam")], start=1):
        module = mlp()
        result = export_torch_module(
            module,
            torch.randn(1, 5),
            name="train-mlp",
            version=str(version),
            out=workdir / "train-registry",
            trainable=trainable,
            optimizer=optimizer,
            train_batch=BATCH,
        )
        found[f"{trainable} {optimizer}"] = (result.version_dir, module)
    return found


def training(version_dir: Path) -> dict:
    return json.loads((version_dir / "model.json").read_text())["training"]


@pytest.mark.parametrize("case", ["last:2 sgd", "all adam"])
def test_steps_match_torch_optim(exported, case: str) -> None:
    entry = training(exported[case][0])
    assert entry["trainable"] == case.split()[0]
    assert [p["name"] for p in entry["parameters"]] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert entry["loss"] == {"kind": "mse", "inferred": True}
    assert entry["optimizer"]["flavor"] == "torch" and entry["optimizer"]["kind"] == case.split()[1]
    if case.endswith("adam"):
        assert entry["optimizer"]["epsilon"] == 1e-08 and len(entry["state"]) == 8
    assert entry["parity"]["passed"] and entry["parity"]["against"].startswith("torch ")
    assert max(entry["parity"]["steps"].values()) <= 1e-5
    edge = entry["edge"]  # the ReLU's backward mask is rewritten for ONNX.js (relu-mask-to-sign)
    assert edge["file"] == "train.edge.onnx" and {"cpu", "wasm"} <= set(edge["backends"]), edge["blockers"]
    assert "relu-mask-to-sign" in [p["name"] for p in edge["passes"] if p["applied"]]


def _torch_steps(module, keys, x, y, optimizer: str, steps: int) -> dict[str, np.ndarray]:
    """torch.optim on a fresh copy of the module, on the real rows only (mean loss)."""
    import copy

    import torch

    module = copy.deepcopy(module).eval()
    params = dict(module.named_parameters())
    chosen = [params[k] for k in keys]
    opt = torch.optim.SGD(chosen, lr=0.01) if optimizer == "sgd" else torch.optim.Adam(chosen, lr=0.001)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(module(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    return {k: p.detach().numpy() for k, p in params.items()}


@pytest.mark.parametrize("case", ["last:2 sgd", "all adam"])
def test_a_padded_short_batch_is_the_step_on_its_real_rows(exported, case: str) -> None:
    version_dir, module = exported[case]
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(5, 5)).astype("float32"), rng.normal(size=(5, 3)).astype("float32")  # 5 rows, batch 8
    ours = train(version_dir, x, y, epochs=3)
    assert ours.steps == 3
    theirs = _torch_steps(module, list(ours.parameters), x, y, case.split()[1], 3)
    for name, value in ours.parameters.items():
        assert np.max(np.abs(value - theirs[name])) <= 1e-5, name


def test_adam_keeps_a_zero_gradient_parameter_finite(exported) -> None:
    version_dir, _ = exported["all adam"]
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 5)).astype("float32")
    x[:, 2] = 0.0  # the first layer's weights on input 2 get a zero gradient at every step
    y = rng.normal(size=(16, 3)).astype("float32")
    result = train(version_dir, x, y, epochs=10)  # 20 steps
    assert result.steps == 20
    assert all(np.all(np.isfinite(value)) for value in [*result.parameters.values(), *result.state.values()])
    assert np.array_equal(result.parameters["0.weight"][:, 2], base_parameters(version_dir)["0.weight"][:, 2])
    assert not np.array_equal(result.parameters["0.weight"][:, 0], base_parameters(version_dir)["0.weight"][:, 0])


@pytest.mark.sklearn
def test_sklearn_says_trainable_is_not_supported(zoo_model, tmp_path: Path, capsys) -> None:
    from edgecloud.cli import main as cli

    model, sample = zoo_model("sklearn_logistic")
    code = cli(["export", str(model), "--name", "sk", "--out", str(tmp_path), "--trust-pickle", "--trainable", "head"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not supported for sklearn" in err
    assert not (tmp_path / "sk").exists()
