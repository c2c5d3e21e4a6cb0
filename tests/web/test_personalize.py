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

from .conftest import BUMPED_TRAINABLE, FORECASTER, TRAINABLE
from .registry_models import fitted_forecaster, pulse_signal, windows, write_version
from .train_fixture import BATCH, epoch_orders, make_trainable, reference_steps
from .trainer_driver import TrainerDriver

pytestmark = [pytest.mark.integration]

ORT_ONLY = {"onnxjsBackends": []}  # no ONNX.js backend allowed: onnxruntime-web runs both graphs


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
            loss, new_w, new_b, v_w, v_b = session.run(
                None,
                {
                    "window": xb,
                    "target.forecast": yb,
                    "example_weight": w,
                    "learning_rate": np.array([learning_rate], np.float32),
                    "param.W": params["W"],
                    "param.b": params["b"],
                    "state.v.W": state["W"],
                    "state.v.b": state["b"],
                },
            )
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
    want_w, want_b, want_losses = reference_steps(weights, bias, x, y, epochs=3, batch_size=6, learning_rate=0.05, shuffle=True, seed=11)
    ort_w, ort_b, ort_losses = onnxruntime_steps(
        version_dir, weights, bias, x, y, epochs=3, batch_size=6, learning_rate=0.05, shuffle=True, seed=11
    )
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


def test_a_run_interrupted_by_a_reload_resumes_to_the_uninterrupted_result(trainer):
    x, y = person()
    trainer.create(TRAINABLE)
    whole = trainer.personalize(x, y, **OPTIONS)
    assert whole["resumedFromStep"] == 0
    uninterrupted = trainer.parameters()
    trainer.reset()

    # The fake battery drops at step 4, so the run pauses there; then the page goes away.
    trainer.start(x, y, pause_at_step=4, **OPTIONS)
    trainer.page.wait_for_function("window.handler.status().personalization.training.state === 'paused'")
    assert trainer.status()["personalization"]["training"]["reason"].startswith("battery is discharging at 10 %")
    trainer.reload()
    trainer.battery(charging=True, level=1.0)
    trainer.create(TRAINABLE)
    assert trainer.personalization() is None  # nothing was adopted mid-run
    resumed = trainer.personalize(x, y, **OPTIONS)
    assert "error" not in resumed, resumed
    assert resumed["resumedFromStep"] == 4
    assert resumed["steps"] == whole["steps"] and len(resumed["loss"]) == whole["steps"]
    assert np.abs(np.array(resumed["loss"]) - whole["loss"]).max() <= 1e-6
    for name, value in trainer.parameters().items():
        assert np.abs(value - uninterrupted[name]).max() <= 1e-6


def test_a_run_whose_worker_is_terminated_resumes_from_its_last_chunk(trainer):
    x, y = person()
    trainer.create(TRAINABLE)
    trainer.personalize(x, y, **OPTIONS)
    uninterrupted = trainer.parameters()
    trainer.reset()
    stopped = trainer.personalize(x, y, stop_at_step=6, **OPTIONS)
    assert stopped["code"] == "training-error" and "the training worker was stopped" in stopped["error"]
    resumed = trainer.personalize(x, y, **OPTIONS)
    assert resumed["resumedFromStep"] == 6
    for name, value in trainer.parameters().items():
        assert np.abs(value - uninterrupted[name]).max() <= 1e-6


def test_training_pauses_while_the_battery_is_low_and_resumes_when_charging(trainer):
    x, y = person()
    trainer.battery(charging=False, level=0.3)
    trainer.create(TRAINABLE)
    trainer.start(x, y, **OPTIONS)
    trainer.page.wait_for_function("window.handler.status().personalization.training.state === 'paused'")
    trainer.page.wait_for_timeout(300)  # six more looks at the battery: still no step
    training = trainer.status()["personalization"]["training"]
    assert training["step"] == 0 and "30 %" in training["reason"]
    trainer.battery(charging=True, level=0.3)
    result = trainer.finish()
    assert result["personalized"] is True and result["steps"] == 12
    states = [event["state"] for event in trainer.page.evaluate("() => window.progress")]
    assert states[0] == "paused" and states[-1] == "training" and "paused" not in states[1:]


def test_data_saver_and_a_visible_page_pause_training_when_asked(trainer):
    blocker = """async (env) => {
      const { trainingBlocker } = await import('/src/train-conditions.js');
      return [await trainingBlocker(env, {}), await trainingBlocker(env, { respectSaveData: false }),
              await trainingBlocker({ visibilityState: 'visible' }, { requireHidden: true }),
              await trainingBlocker({ visibilityState: 'hidden', idle: false }, { requireHidden: true, requireIdle: true }),
              await trainingBlocker({ visibilityState: 'hidden', idle: true }, { requireHidden: true, requireIdle: true })];
    }"""
    save_data, ignored, visible, busy, allowed = trainer.page.evaluate(blocker, {"connection": {"saveData": True}})
    assert save_data == "data saver is on" and ignored is None
    assert visible.startswith("the page is visible") and busy.startswith("the person used the page")
    assert allowed is None


def test_no_request_carries_the_examples_while_personalising_and_predicting_local_only(trainer, site):
    x, y = person()
    trainer.create(TRAINABLE)
    requests = []
    trainer.page.on("request", lambda r: requests.append((r.method, r.url, r.post_data_buffer)))
    trainer.page.context.on("request", lambda r: requests.append((r.method, r.url, r.post_data_buffer)))
    result = trainer.personalize(x, y, **OPTIONS)
    assert result["personalized"] is True
    answer = trainer.predict(x[:2], "local-only")
    assert answer["ranOn"] == "edge" and answer["personalized"] is True
    # Every request (page and workers) is a body-less GET of the site's own static files: the model
    # registry, the runtimes and the modules. Nothing goes to MMS, nothing carries a body.
    assert requests, "the recorder saw nothing"
    assert all(method == "GET" and body in (None, b"") for method, _, body in requests), requests
    assert all(url.startswith(site.url + "/") for _, url, _ in requests), requests
    paths = {url[len(site.url) :] for _, url, _ in requests}
    assert all(p.startswith(("/models/", "/src/", "/vendor/", "/onnx-wasm.wasm")) and "?" not in p for p in paths), paths
    # The recorder sees the workers' requests too (the training worker's module and ONNX.js).
    assert {"/src/train-worker.js", "/vendor/onnxjs/onnx.min.js", f"/models/{TRAINABLE}/1/train.onnx"} <= paths


def test_reset_returns_to_the_shared_model(trainer, trainable):
    _, weights, bias = trainable
    x, y = person()
    trainer.create(TRAINABLE)
    trainer.personalize(x, y, **OPTIONS)
    assert trainer.reset() == {"personalized": False, "modelVersion": "1"}
    assert trainer.personalization() is None
    answer = trainer.predict(x[:2], "local-only")
    assert answer["personalized"] is False
    np.testing.assert_allclose(np.asarray(answer["outputs"]["forecast"]["data"]).reshape(2, 8), x[:2] @ weights + bias, atol=1e-5)
    trainer.reload()
    trainer.create(TRAINABLE)
    assert trainer.personalization() is None  # the reset reached IndexedDB too


def test_the_personalisation_survives_a_reload(trainer):
    x, y = person()
    trainer.create(TRAINABLE)
    trainer.personalize(x, y, **OPTIONS)
    before = trainer.personalization()
    trainer.reload()
    trainer.create(TRAINABLE)
    assert trainer.personalization() == before
    assert trainer.status()["personalization"]["personalized"] is True
    answer = trainer.predict(x[:2], "local-only")
    params = trainer.parameters()
    assert answer["personalized"] is True
    np.testing.assert_allclose(
        np.asarray(answer["outputs"]["forecast"]["data"]).reshape(2, 8), x[:2] @ params["W"] + params["b"], atol=1e-5
    )


BAD = [
    ("a window of 63 numbers", lambda x, y: ({"inputs": [x[0][:63].tolist()], "targets": [y[0].tolist()]}, {}), "expected float32[?, 64]"),
    ("NaN in the inputs", lambda x, y: ({"inputs": [[float("nan")] + x[0][1:].tolist()], "targets": [y[0].tolist()]}, {}), "NaN or Inf"),
    ("NaN in the targets", lambda x, y: ({"inputs": x[:1].tolist(), "targets": [[float("nan")] * 8]}, {}), "NaN or Inf"),
    ("no examples", lambda x, y: ({"inputs": [], "targets": []}, {}), "at least one example"),
    ("fewer targets than inputs", lambda x, y: ({"inputs": x[:3].tolist(), "targets": y[:2].tolist()}, {}), "2 rows but the inputs have 3"),
    (
        "a batch above the step's",
        lambda x, y: ({"inputs": x[:3].tolist(), "targets": y[:3].tolist()}, {"batchSize": BATCH + 1}),
        "from 1 to 8",
    ),
    (
        "an unknown option",
        lambda x, y: ({"inputs": x[:3].tolist(), "targets": y[:3].tolist()}, {"epoch": 2}),
        "unknown personalize() option 'epoch'",
    ),
    (
        "a zero learning rate",
        lambda x, y: ({"inputs": x[:3].tolist(), "targets": y[:3].tolist()}, {"learningRate": 0}),
        "learningRate must be",
    ),
    ("no targets", lambda x, y: ({"inputs": x[:3].tolist()}, {}), "takes {inputs, targets}"),
]


def test_bad_input_is_one_bad_input_error_and_changes_nothing(trainer):
    x, y = person()
    trainer.create(TRAINABLE)
    trainer.personalize(x, y, **OPTIONS)
    before = trainer.personalization()
    call = """async ([data, options]) => {
      try { await window.handler.personalize(data, options); return null; }
      catch (error) { return { code: error.code, message: error.message }; }
    }"""
    for what, make, wanted in BAD:
        error = trainer.page.evaluate(call, list(make(x, y)))
        assert error is not None, what
        assert error["code"] == "bad-input" and wanted in error["message"], (what, error)
    assert trainer.personalization() == before
    assert trainer.status()["personalization"]["training"]["state"] == "idle"


def test_a_model_without_training_cannot_be_personalised(trainer):
    trainer.create(FORECASTER)
    x, y = person(4)
    result = trainer.personalize(x, y)
    assert result["code"] == "bad-input" and 'has no "training" entry' in result["error"]
    assert trainer.page.evaluate("() => window.handler.personalization()") is None


def test_a_new_version_drops_the_old_personalisation_and_says_so(trainer, registry):
    x, y = person()
    trainer.create(BUMPED_TRAINABLE)
    trainer.personalize(x, y, **OPTIONS)
    make_trainable(write_version(registry, BUMPED_TRAINABLE, "2", fitted_forecaster(bias_shift=0.5)[0]))
    check = trainer.page.evaluate("() => window.handler.updater.check()")
    assert check["reason"] == "switched 1 → 2", check
    assert trainer.personalization() is None
    note = trainer.status()["personalization"]["note"]
    assert "personalisation of v1 was dropped when v2 was adopted" in note
    assert trainer.predict(x[:1], "local-only")["personalized"] is False
    trainer.reload()
    trainer.create(BUMPED_TRAINABLE)
    assert trainer.status()["modelVersion"] == "2" and trainer.personalization() is None


def test_an_aborted_signal_stops_a_paused_run_and_its_checkpoint_resumes(trainer):
    x, y = person()
    trainer.create(TRAINABLE)
    aborted = trainer.page.evaluate(
        """async ({ data, options }) => {
          const controller = new AbortController();
          const onProgress = (event) => {
            if (event.step >= 2) window.fakeBattery = { charging: false, level: 0.2 };
            if (event.state === 'paused') controller.abort(new Error('the person closed the panel'));
          };
          try { await window.handler.personalize(data, { ...options, onProgress, signal: controller.signal }); return null; }
          catch (error) { return { code: error.code, message: error.message }; }
        }""",
        {"data": {"inputs": x.tolist(), "targets": y.tolist()}, "options": OPTIONS},
    )
    assert aborted["code"] == "training-aborted" and "the person closed the panel" in aborted["message"]
    assert trainer.personalization() is None
    trainer.battery(charging=True, level=1.0)
    resumed = trainer.personalize(x, y, **OPTIONS)
    assert resumed["resumedFromStep"] == 2 and resumed["steps"] == 12
