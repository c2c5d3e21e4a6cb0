"""Personalisation of a model exported by `edgecloud export --trainable head` (the real step graph:
torch autodiff, Adam, lowered for ONNX.js), in Chromium on ONNX.js and onnxruntime-web: the
browser's parameters after N steps equal PyTorch's own `torch.optim.Adam` on the same batches and
onnxruntime running train.onnx in Python (export/train/runner.py), and the personalised edge
model predicts what the trained PyTorch module predicts."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from mms_handlers.archive import build_archive

from .test_personalize import ORT_ONLY
from .trainer_driver import TrainerDriver

pytestmark = [pytest.mark.integration, pytest.mark.torch]

EXPORTED = "web_train_torch"
RATE = 0.01


@pytest.fixture(scope="session")
def exported(registry: Path, model_store: Path, mms, web_models):
    import torch

    from export.torch_module import export_torch_module

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    result = export_torch_module(
        module, torch.randn(1, 6), name=EXPORTED, version="1", out=registry, trainable="head", optimizer="adam", train_batch=8
    )
    build_archive(result.version_dir, model_store)
    mms.register(f"{EXPORTED}.mar")
    mms.wait_until_healthy()
    return result.version_dir, module


@pytest.fixture
def trainer(page, site, mms, exported) -> TrainerDriver:
    return TrainerDriver(page, site, mms).open()


def examples(count: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((count, 6)).astype(np.float32)
    y = (np.tanh(x[:, :3]) + 0.1 * rng.standard_normal((count, 3))).astype(np.float32)
    return x, y


def torch_reference(module, x, y, *, epochs: int, batch: int):
    """PyTorch's own training of the head (last Linear) on the browser's batches: torch.optim.Adam."""
    import torch

    trained = copy.deepcopy(module).eval()
    head = trained[2]
    for parameter in trained.parameters():
        parameter.requires_grad_(False)
    head.weight.requires_grad_(True)
    head.bias.requires_grad_(True)
    optimizer = torch.optim.Adam([head.weight, head.bias], lr=RATE, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for _ in range(epochs):
        for start in range(0, len(x), batch):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(
                trained(torch.from_numpy(x[start : start + batch])), torch.from_numpy(y[start : start + batch])
            )
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
    params = {"2.weight": head.weight.detach().numpy().copy(), "2.bias": head.bias.detach().numpy().copy()}
    return params, losses, trained


@pytest.mark.parametrize("policy, backend", [({}, "onnxjs/"), (ORT_ONLY, "onnxruntime-web/wasm")], ids=["onnxjs", "ortweb"])
def test_the_browser_trains_the_exported_step_like_pytorch_and_onnxruntime(trainer, exported, policy, backend):
    import torch

    from export.train.runner import train

    version_dir, module = exported
    assert trainer.create(EXPORTED, policy=policy)["state"] == "ready"
    x, y = examples()
    result = trainer.personalize(x, y, epochs=2, learningRate=RATE, shuffle=False)
    assert "error" not in result, result
    assert result["backend"].startswith(backend) and result["steps"] == 6 and result["samples"] == 20
    got = trainer.parameters()
    want, want_losses, trained = torch_reference(module, x, y, epochs=2, batch=8)
    ours = train(version_dir, x, y, epochs=2, learning_rate=RATE, shuffle=False)
    assert set(got) == set(want) == set(ours.parameters)
    for name in want:
        assert np.abs(got[name] - want[name]).max() <= 1e-5, name
        assert np.abs(got[name] - ours.parameters[name]).max() <= 1e-5, name
        assert np.abs(got[name] - module.state_dict()[name].numpy()).max() > 1e-3, name  # it moved
    np.testing.assert_allclose(result["loss"], want_losses, atol=1e-5)
    np.testing.assert_allclose(result["loss"], ours.losses, atol=1e-5)

    probe = examples(4)[0]
    edge = trainer.predict(probe, "local-only")
    assert edge["personalized"] is True
    with torch.no_grad():
        expected = trained(torch.from_numpy(probe)).numpy()
    np.testing.assert_allclose(np.asarray(edge["outputs"]["output"]["data"]).reshape(4, 3), expected, atol=1e-5)
    assert trainer.predict(probe, "prefer-cloud")["personalized"] is False
    assert trainer.page.errors == []
