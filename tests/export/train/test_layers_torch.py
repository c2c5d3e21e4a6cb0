"""Issue 28 on PyTorch: a Conv1d → GRU → Linear regressor with `--trainable all` trains every
parameter (the GRU's gates reordered and its bias split into PyTorch's two), proven against
torch.optim.Adam and equal to it on the personalised model's predictions; BatchNorm trains its scale
and bias with frozen statistics. The embedding + attention text classifier is test_text_classifier.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from export.train.runner import personalized_model, train

from .torch_layer_models import CHANNELS, SERIES, batchnorm_mlp, bidirectional_regressor, conv_gru_regressor

pytestmark = pytest.mark.torch
BATCH, RATE = 4, 0.01


def torch_adam(module, x: np.ndarray, y: np.ndarray, loss, steps: int, frozen: tuple[str, ...] = ()):
    import torch

    trained = copy.deepcopy(module).eval()
    chosen = [p for n, p in trained.named_parameters() if not n.startswith(frozen)]
    optimizer = torch.optim.Adam(chosen, lr=RATE)
    for step in range(steps):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        optimizer.zero_grad()
        loss(trained(torch.from_numpy(x[rows])), torch.from_numpy(y[rows])).backward()
        optimizer.step()
    return trained


def predictions(version_dir: Path, parameters: dict, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(personalized_model(version_dir, parameters), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_all_trains_a_conv_gru_regressor_like_torch_adam(tmp_path: Path) -> None:
    import torch

    from export.torch_module import export_torch_module

    module = conv_gru_regressor()
    result = export_torch_module(
        module, torch.randn(1, 1, SERIES), name="gru", version="1", out=tmp_path, trainable="all", learning_rate=RATE, train_batch=BATCH
    )
    entry = json.loads((result.version_dir / "model.json").read_text())["training"]
    assert entry["trained"]["tensors"] == 8  # conv W, b; GRU W, R, bias_ih, bias_hh; head W, b
    assert entry["trained"]["parameters"] == sum(p.numel() for p in module.parameters())
    assert entry["parity"]["passed"] and max(entry["parity"]["steps"].values()) <= 1e-5
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2 * BATCH, 1, SERIES)).astype(np.float32)
    y = rng.standard_normal((2 * BATCH, 2)).astype(np.float32)
    ours = train(result.version_dir, x, y, learning_rate=RATE)
    theirs = torch_adam(module, x, y, torch.nn.functional.mse_loss, steps=2)
    probe = rng.standard_normal((3, 1, SERIES)).astype(np.float32)
    with torch.no_grad():
        want, before = theirs(torch.from_numpy(probe)).numpy(), module(torch.from_numpy(probe)).numpy()
    got = predictions(result.version_dir, ours.parameters, probe)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(got - before).max() > 1e-3  # it moved


@pytest.mark.parametrize("cell, layers, tensors", [("gru", 2, 18), ("lstm", 1, 10)])
def test_all_trains_a_bidirectional_recurrent_regressor_like_torch_adam(tmp_path: Path, cell: str, layers: int, tensors: int) -> None:
    """Each direction's W, R and bias halves are their own tensors (PyTorch's `…_reverse` variables):
    per layer and direction 4, plus the head's 2."""
    import torch

    from export.torch_module import export_torch_module

    module = bidirectional_regressor(cell, layers)
    steps = 6
    result = export_torch_module(
        module,
        torch.randn(1, steps, CHANNELS),
        name=cell,
        version="1",
        out=tmp_path,
        trainable="all",
        learning_rate=RATE,
        train_batch=BATCH,
    )
    entry = json.loads((result.version_dir / "model.json").read_text())["training"]
    assert entry["trained"]["tensors"] == len(list(module.parameters())) == tensors
    assert entry["trained"]["parameters"] == sum(p.numel() for p in module.parameters())
    assert entry["parity"]["passed"] and max(entry["parity"]["steps"].values()) <= 1e-5
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2 * BATCH, steps, CHANNELS)).astype(np.float32)
    y = rng.standard_normal((2 * BATCH, 2)).astype(np.float32)
    ours = train(result.version_dir, x, y, learning_rate=RATE)
    theirs = torch_adam(module, x, y, torch.nn.functional.mse_loss, steps=2)
    probe = rng.standard_normal((3, steps, CHANNELS)).astype(np.float32)
    with torch.no_grad():
        want = theirs(torch.from_numpy(probe)).numpy()
    np.testing.assert_allclose(predictions(result.version_dir, ours.parameters, probe), want, atol=1e-5)


def test_batch_normalization_trains_scale_and_bias_with_frozen_statistics(tmp_path: Path) -> None:
    import torch

    from export.torch_module import export_torch_module

    module = batchnorm_mlp()
    result = export_torch_module(
        module, torch.randn(1, 5), name="bn", version="1", out=tmp_path, trainable="all", learning_rate=RATE, train_batch=BATCH
    )
    entry = json.loads((result.version_dir / "model.json").read_text())["training"]
    assert entry["trained"]["tensors"] == 6 and entry["parity"]["passed"]
    frozen = entry["trained"]["frozen"]
    assert len(frozen) == 2 and all("running statistics stay frozen" in f["why"] for f in frozen)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2 * BATCH, 5)).astype(np.float32)
    y = rng.standard_normal((2 * BATCH, 2)).astype(np.float32)
    ours = train(result.version_dir, x, y, learning_rate=RATE)
    theirs = torch_adam(module, x, y, torch.nn.functional.mse_loss, steps=2)
    assert torch.equal(theirs[1].running_mean, module[1].running_mean)  # eval mode: statistics untouched
    probe = rng.standard_normal((3, 5)).astype(np.float32)
    with torch.no_grad():
        want = theirs(torch.from_numpy(probe)).numpy()
    np.testing.assert_allclose(predictions(result.version_dir, ours.parameters, probe), want, atol=1e-5)
