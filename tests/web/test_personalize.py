"""Personalisation in real Chromium against a real stack (static site, MMS): the training step
graph runs in the training worker on ONNX.js and onnxruntime-web; parameters, checkpoints,
conditions, reset, bad input and what the page sends while it trains.

The model is the plumbing fixture of train_fixture.py (a contract-following step graph), checked
against its numpy twin and against onnxruntime running the same train.onnx in Python.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from mms_handlers.archive import build_archive

from .conftest import FORECASTER
from .registry_models import fitted_forecaster, pulse_signal, windows, write_version
from .train_fixture import BATCH, epoch_orders, make_trainable, reference_steps
from .trainer_driver import TrainerDriver

pytestmark = [pytest.mark.integration]

TRAINABLE = "web_train"
ORT_ONLY = {"onnxjsBackends": []}  # no ONNX.js backend allowed: onnxruntime-web runs both graphs


@pytest.fixture(scope="session")
def trainable(registry: Path, model_store: Path, mms, web_models):
    model, weights, bias = fitted_forecaster()
    version_dir = write_version(registry, TRAINABLE, "1", model)
    make_trainable(version_dir)
    build_archive(version_dir, model_store)
    mms.register(f"{TRAINABLE}.mar")
    mms.wait_until_healthy()
    return version_dir, weights, bias


@pytest.fixture
def trainer(page, site, mms, trainable) -> TrainerDriver:
    return TrainerDriver(page, site, mms).open()


def person(count: int = 20, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """One person's windows: a slower, noisier pulse than the one the shared model was fitted on."""
    x, y = windows(pulse_signal(count + 72, period=37.0, noise=0.05, seed=seed))
    return x[:count], y[:count]


def onnxruntime_steps(version_dir: Path, weights, bias, x, y, *, epochs, batch_size, learning_rate, shuffle, seed):
    """train.onnx under onnxruntime in Python, on the batches the browser makes (padded to BATCH)."""
    session = onnxruntime.InferenceSession(str(version_dir / "train.onnx"))
    params = {"W": weights, "b": bias}
    state = {k: np.zeros_like(v) for k, v in params.items()}
    losses = []
    for order in epoch_orders(len(x), epochs, shuffle, seed):
        for start in range(0, len(x), batch_size):
            rows = order[start : start + batch_size]
            xb, yb, w = np.zeros((BATCH, 64), np.float32), np.zeros((BATCH, 8), np.float32), np.zeros(BATCH, np.float32)
            xb[: len(rows)], yb[: len(rows)], w[: len(rows)] = x[rows], y[rows], 1
            loss, new_w, new_b, v_w, v_b = session.run(None, {
                "window": xb, "target.forecast": yb, "example_weight": w,
                "learning_rate": np.array([learning_rate], np.float32),
                "param.W": params["W"], "param.b": params["b"], "state.v.W": state["W"], "state.v.b": state["b"],
            })  # fmt: skip
            params, state = {"W": new_w, "b": new_b}, {"W": v_w, "b": v_b}
            losses.append(float(loss[0]))
    return params["W"], params["b"], losses


OPTIONS = {"epochs": 3, "batchSize": 6, "learningRate": 0.05, "shuffle": True, "seed": 11}


@pytest.mark.parametrize("policy, backend", [({}, "onnxjs/"), (ORT_ONLY, "onnxruntime-web/wasm")], ids=["onnxjs", "ortweb"])
def test_personalize_matches_numpy_and_onnxruntime_and_predicts_with_it(trainer, trainable, policy, backend):
    version_dir, weights, bias = trainable
    assert trainer.create(TRAINABLE, policy=policy)["state"] == "ready"
    x, y = person()
    result = trainer.personalize(x, y, **OPTIONS)
    assert "error" not in result, result
    steps = 3 * 4  # ceil(20 / 6) per epoch
    assert (result["steps"], result["epochs"], result["samples"], result["personalized"]) == (steps, 3, 20, True)
    assert result["backend"].startswith(backend)
    want_w, want_b, want_losses = reference_steps(weights, bias, x, y, epochs=3, batch_size=6, learning_rate=0.05,
                                                  shuffle=True, seed=11)  # fmt: skip
    ort_w, ort_b, ort_losses = onnxruntime_steps(version_dir, weights, bias, x, y, epochs=3, batch_size=6,
                                                 learning_rate=0.05, shuffle=True, seed=11)  # fmt: skip
    got = trainer.parameters()
    for name, numpy_value, ort_value in (("W", want_w, ort_w), ("b", want_b, ort_b)):
        assert np.abs(got[name] - numpy_value).max() <= 1e-5
        assert np.abs(got[name] - ort_value).max() <= 1e-5
    assert np.abs(np.array(result["loss"]) - want_losses).max() <= 1e-5
    assert np.abs(np.array(result["loss"]) - ort_losses).max() <= 1e-5
    assert result["loss"][-1] < result["loss"][0]  # it learned something
    assert np.abs(got["W"] - weights).max() > 1e-3  # and moved away from the shared model

    info = trainer.personalization()
    assert info["baseVersion"] == "1" and info["steps"] == steps and info["samples"] == 20
    probe = person(3, seed=9)[0]
    edge = trainer.predict(probe, "local-only")
    assert edge["ranOn"] == "edge" and edge["personalized"] is True
    forecast = np.asarray(edge["outputs"]["forecast"]["data"], np.float32).reshape(3, 8)
    np.testing.assert_allclose(forecast, probe @ got["W"] + got["b"], atol=1e-5)
    cloud = trainer.predict(probe, "prefer-cloud")
    assert cloud["ranOn"] == "cloud" and cloud["personalized"] is False
    cloud_forecast = np.asarray(cloud["outputs"]["forecast"]["data"], np.float32).reshape(3, 8)
    np.testing.assert_allclose(cloud_forecast, probe @ weights + bias, atol=1e-5)
    assert trainer.page.errors == []
