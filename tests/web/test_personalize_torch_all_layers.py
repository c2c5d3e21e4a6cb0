"""Issue 28 item 4 on PyTorch: the `--trainable all` steps of the PyTorch recurrent regressors (the
issue's Conv1d → GRU → Linear, a 2-layer bidirectional GRU, a bidirectional LSTM) personalise in
Chromium on onnxruntime-web (wasm), every tensor of them, with parameters and losses equal to
onnxruntime running train.onnx in Python (test_layers_torch.py proves the same steps against
torch.optim.Adam)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.export.train.torch_layer_models import CHANNELS, SERIES, bidirectional_regressor, conv_gru_regressor

from .trainer_driver import TrainerDriver, personalises_like_onnxruntime

pytestmark = [pytest.mark.integration, pytest.mark.torch]

BATCH, STEPS, RATE = 4, 6, 0.01
# name, module builder, one example's shape (the sample's batch is 1), tensors `all` trains
MODELS = {
    "all-layers-torch-conv-gru": (conv_gru_regressor, (1, SERIES), 8),
    "all-layers-torch-bigru": (lambda: bidirectional_regressor("gru", 2), (STEPS, CHANNELS), 18),
    "all-layers-torch-bilstm": (lambda: bidirectional_regressor("lstm", 1), (STEPS, CHANNELS), 10),
}


@pytest.fixture(scope="module")
def torch_all(registry: Path) -> dict[str, Path]:
    import torch

    from export.torch_module import export_torch_module

    exported = {}
    for name, (build, shape, _) in MODELS.items():
        result = export_torch_module(
            build(), torch.randn(1, *shape), name=name, version="1", out=registry, trainable="all", learning_rate=RATE, train_batch=BATCH
        )
        exported[name] = result.version_dir
    return exported


@pytest.mark.parametrize("name", list(MODELS))
def test_a_torch_recurrent_model_personalises_every_tensor_on_onnxruntime_web_like_onnxruntime(
    page, site, mms, torch_all, name: str
) -> None:
    _, shape, tensors = MODELS[name]
    rng = np.random.default_rng(11)
    x = rng.standard_normal((10, *shape)).astype(np.float32)
    y = rng.standard_normal((10, 2)).astype(np.float32)
    personalises_like_onnxruntime(TrainerDriver(page, site, mms).open(), name, torch_all[name], x, y, steps=6, tensors=tensors)
