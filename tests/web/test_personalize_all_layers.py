"""Issue 28 in the page: a Keras Conv1D → MaxPool → Conv1D → GlobalAveragePooling → Dense model
exported with `--trainable all` personalises in Chromium on onnxruntime-web (wasm), every tensor
of it, and the browser's parameters and losses equal onnxruntime running train.onnx in Python.
ONNX.js cannot run this step (MaxPool's backward is a ScatterElements, the input gradient a
ConvTranspose: listed in `training.edge.blockers`), so the page picks onnxruntime-web by itself.
The same for a Keras Conv2D → BatchNormalization CNN classifier: its BatchNormalization's γ and β
train in the page (running statistics frozen) as train.onnx trains them under onnxruntime; and the
Keras Conv1D → GRU (a Loop) and Bidirectional(LSTM) / Bidirectional(GRU) regressors, each direction's
tensors its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.export.train.keras_layer_models import RECURRENT_STEPS, SERIES, batchnorm_cnn, cnn, conv_recurrent_regressor

from .trainer_driver import TrainerDriver, personalises_like_onnxruntime

pytestmark = [pytest.mark.integration, pytest.mark.keras]

NAME, BATCH, RATE = "all-layers-cnn", 4, 0.01
BN_NAME = "all-layers-bn-cnn"


@pytest.fixture(scope="session")
def all_layers(registry: Path, workdir: Path) -> Path:
    from export.pipeline import export_model

    source = cnn(workdir / "all-layers-cnn.keras")
    return export_model(source, name=NAME, version="1", out=registry, trainable="all", learning_rate=RATE, train_batch=BATCH).version_dir


@pytest.fixture(scope="session")
def batchnorm_all(registry: Path, workdir: Path) -> Path:
    from export.pipeline import export_model

    source = batchnorm_cnn(workdir / "all-layers-bn-cnn.keras")
    return export_model(source, name=BN_NAME, version="1", out=registry, trainable="all", learning_rate=RATE, train_batch=BATCH).version_dir


@pytest.fixture
def trainer(page, site, mms, all_layers) -> TrainerDriver:
    return TrainerDriver(page, site, mms).open()


def test_all_layers_personalise_on_onnxruntime_web_like_onnxruntime(trainer, all_layers: Path) -> None:
    entry = json.loads((all_layers / "model.json").read_text())["training"]
    assert entry["edge"]["backends"] == []  # ONNX.js runs none of it: the page must not try
    rng = np.random.default_rng(8)
    x = rng.standard_normal((10, SERIES, 1)).astype(np.float32)
    y = rng.standard_normal((10, 3)).astype(np.float32)
    personalises_like_onnxruntime(trainer, NAME, all_layers, x, y, steps=6, tensors=6)


def test_batchnorm_cnn_trains_gamma_and_beta_on_onnxruntime_web_like_onnxruntime(page, site, mms, batchnorm_all: Path) -> None:
    from export.train.runner import base_parameters, train

    entry = json.loads((batchnorm_all / "model.json").read_text())["training"]
    assert entry["edge"]["backends"] == [] and entry["edge"]["blockers"]  # why ONNX.js cannot run it, per backend
    trainer = TrainerDriver(page, site, mms).open()
    assert trainer.create(BN_NAME, cloud=False)["state"] == "ready"
    rng = np.random.default_rng(9)
    x = rng.standard_normal((10, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 10)  # class indices: the page makes the one-hot rows
    result = trainer.personalize(x, y, epochs=2, learningRate=RATE, shuffle=False)
    assert "error" not in result, result
    assert result["backend"].startswith("onnxruntime-web/wasm") and result["steps"] == 6
    got = trainer.parameters()
    ours = train(batchnorm_all, x, y, epochs=2, learning_rate=RATE)
    base = base_parameters(batchnorm_all)
    assert set(got) == set(ours.parameters) and len(got) == 10
    assert {"norm1/gamma", "norm1/beta", "norm2/gamma", "norm2/beta"} <= set(got)
    for name in got:
        assert np.abs(got[name] - ours.parameters[name]).max() <= 1e-5, name
        assert np.abs(got[name] - base[name]).max() > 1e-4, name  # every tensor moved
    np.testing.assert_allclose(result["loss"], ours.losses, atol=1e-5)
    assert trainer.page.errors == []


GRU_NAME = "all-layers-keras-gru"


@pytest.fixture(scope="session")
def keras_gru_all(registry: Path, workdir: Path) -> Path:
    """Keras Conv1D → GRU (reset_after=True: an ONNX Loop in model.onnx) → Dense, `--trainable all`."""
    from export.pipeline import export_model

    source = conv_recurrent_regressor(workdir / "all-layers-keras-gru.keras")
    return export_model(
        source, name=GRU_NAME, version="1", out=registry, trainable="all", learning_rate=RATE, train_batch=BATCH
    ).version_dir


def test_a_keras_gru_loop_personalises_on_onnxruntime_web_like_onnxruntime(page, site, mms, keras_gru_all: Path) -> None:
    """The step of the GRU's Loop (unrolled over its 8 time steps) runs in the page: every one of the
    7 tensors moves, and parameters and losses equal onnxruntime's in Python."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, RECURRENT_STEPS, 1)).astype(np.float32)
    y = rng.standard_normal((6, 2)).astype(np.float32)
    personalises_like_onnxruntime(TrainerDriver(page, site, mms).open(), GRU_NAME, keras_gru_all, x, y, steps=4, tensors=7)


BIDIRECTIONAL = {
    # name: (conv_recurrent_regressor's layer, Keras's initial biases, tensors `all` trains)
    "all-layers-keras-bilstm": ("bidirectional-lstm", False, 10),  # one bidirectional ONNX LSTM
    "all-layers-keras-bigru": ("bidirectional-gru", True, 10),  # two Loops, a ReverseSequence before the backward one
}


@pytest.fixture(scope="session")
def keras_bidirectional_all(registry: Path, workdir: Path) -> dict[str, Path]:
    from export.pipeline import export_model

    exported = {}
    for name, (layer, fresh, _) in BIDIRECTIONAL.items():
        source = conv_recurrent_regressor(workdir / f"{name}.keras", layer, fresh_biases=fresh)
        exported[name] = export_model(
            source, name=name, version="1", out=registry, trainable="all", learning_rate=RATE, train_batch=BATCH
        ).version_dir
    return exported


@pytest.mark.parametrize("name", list(BIDIRECTIONAL))
def test_a_keras_bidirectional_layer_personalises_both_directions_on_onnxruntime_web(
    page, site, mms, keras_bidirectional_all, name: str
) -> None:
    """Each direction's kernel, recurrent kernel and bias is its own tensor in the step; all 10 move
    in the page as train.onnx moves them under onnxruntime."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((6, RECURRENT_STEPS, 1)).astype(np.float32)
    y = rng.standard_normal((6, 2)).astype(np.float32)
    tensors = BIDIRECTIONAL[name][2]
    personalises_like_onnxruntime(
        TrainerDriver(page, site, mms).open(), name, keras_bidirectional_all[name], x, y, steps=4, tensors=tensors
    )
