"""Routing in real Chromium against a real MMS: every privacy mode, lazy runtimes, bad input."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from .conftest import FORECASTER, LSTM_MARKED_ONNXJS, LSTM_MARKED_ORT

pytestmark = [pytest.mark.integration]


def window(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(64).astype(np.float32)


def expected_forecast(web_models, x: np.ndarray) -> np.ndarray:
    weights, bias = web_models.forecaster
    return x.reshape(-1, 64) @ weights + bias


def data(result) -> np.ndarray:
    (tensor,) = result["outputs"].values()
    return np.asarray(tensor["data"], np.float32).reshape(tensor["shape"])


@pytest.mark.parametrize(
    "privacy, policy, ran_on, route",
    [
        ("local-only", {}, "edge", "local-only"),
        ("prefer-edge", {}, "edge", "prefer-edge"),
        ("prefer-cloud", {}, "cloud", "prefer-cloud"),
        ("auto", {}, "edge", "auto: input of 64 numbers ≤ 65536 on a capable device"),
        ("auto", {"autoEdgeMaxElements": 32}, "cloud", "auto: input of 64 numbers > 32"),
        ("auto", {"device": {"cores": 1}}, "cloud", "auto: 1 core(s) < 2"),
        ("auto", {"device": {"memoryGb": 0.5}}, "cloud", "auto: 0.5 GB device memory < 1"),
    ],
)
def test_each_routing_mode_answers_where_it_should(driver, web_models, privacy, policy, ran_on, route):
    assert driver.create(FORECASTER, policy=policy)["state"] == "ready"
    x = window(1)
    result = driver.predict(x.tolist(), privacy)
    assert "error" not in result, result
    assert result["ranOn"] == ran_on and result["route"].startswith(route)
    assert result["fallbackReason"] is None
    assert result["modelVersion"] == "1"
    assert result["backend"] == ("mms/onnxruntime" if ran_on == "cloud" else "onnxjs/wasm")
    assert result["latencyMs"] > 0
    assert result["outputs"]["forecast"]["shape"] == [1, 8]
    np.testing.assert_allclose(data(result), expected_forecast(web_models, x), atol=1e-5)
    assert driver.page.errors == []


def test_edge_and_cloud_agree_on_a_batch(driver, web_models):
    driver.create(FORECASTER)
    batch = np.random.default_rng(2).standard_normal((5, 64)).astype(np.float32)
    edge = driver.predict(batch.tolist(), "prefer-edge")
    cloud = driver.predict(batch.tolist(), "prefer-cloud")
    assert (edge["ranOn"], cloud["ranOn"]) == ("edge", "cloud")
    np.testing.assert_allclose(data(edge), data(cloud), atol=1e-5)
    np.testing.assert_allclose(data(edge), expected_forecast(web_models, batch), atol=1e-5)


def test_local_only_never_sends_the_input_and_fails_clearly(driver, mms, web_models):
    cloud_requests: list[str] = []
    driver.page.on("request", lambda r: r.url.startswith(mms.config.inference_url) and cloud_requests.append(r.url))
    predictions_before = mms_prediction_count(mms)

    driver.create(FORECASTER)
    answered = driver.predict(window(3).tolist(), "local-only")
    assert answered["ranOn"] == "edge"

    status = driver.create(LSTM_MARKED_ONNXJS)  # ONNX.js cannot run an LSTM: the edge is unavailable
    assert status["state"] == "unavailable" and "LSTM" in status["reason"]
    refused = driver.predict([[[0.1]] * 16], "local-only")
    assert refused["code"] == "edge-unavailable"
    assert refused["error"].startswith("local-only: the edge cannot run web_lstm_js v1")
    assert "the input was not sent anywhere" in refused["error"]

    assert cloud_requests == []  # not even /ping
    assert mms_prediction_count(mms) == predictions_before

    # The same two counters do see a request that is allowed to leave.
    driver.create(FORECASTER)
    assert driver.predict(window(3).tolist(), "prefer-cloud")["ranOn"] == "cloud"
    driver.page.wait_for_timeout(100)
    for _ in range(50):
        if mms_prediction_count(mms) > predictions_before:
            break
        driver.page.wait_for_timeout(100)
    assert mms_prediction_count(mms) == predictions_before + 1
    assert any(url.endswith("/predictions/web_fc") for url in cloud_requests)


def mms_prediction_count(mms) -> int:
    """Predictions MMS's workers ran, any model: one PredictionTime line per request in model_metrics.log."""
    log = mms.log_dir / "model_metrics.log"
    return log.read_text().count("PredictionTime.") if log.exists() else 0


def test_onnxruntime_web_is_loaded_only_for_models_marked_for_it(driver, web_models):
    fetched: list[str] = []
    driver.page.on("request", lambda r: fetched.append(r.url))
    driver.create(FORECASTER)
    driver.predict(window(4).tolist(), "local-only")
    assert not [u for u in fetched if "/vendor/onnxruntime-web/" in u]
    assert [u for u in fetched if u.endswith("/vendor/onnxjs/onnx.min.js")]

    assert driver.create(LSTM_MARKED_ORT)["backend"] == "onnxruntime-web/wasm"
    sequence = np.random.default_rng(5).standard_normal((3, 16, 1)).astype(np.float32)
    result = driver.predict(sequence.tolist(), "local-only")
    assert result["ranOn"] == "edge" and result["backend"] == "onnxruntime-web/wasm", result
    assert [u for u in fetched if "/vendor/onnxruntime-web/" in u and u.endswith(".wasm")]
    session = onnxruntime.InferenceSession(str(web_models.registry / LSTM_MARKED_ORT / "1" / "model.onnx"))
    (want,) = session.run(None, {"sequence": sequence})
    np.testing.assert_allclose(data(result), want, atol=1e-5)
    assert driver.page.errors == []


@pytest.mark.parametrize(
    "input, privacy, message",
    [
        ([0.0] * 63, "auto", "input 'window': expected float32[?, 64], got shape [63]"),
        ([[0.0] * 64, [0.0] * 3], "auto", "input 'window' is ragged"),
        ({"windows": [0.0] * 64}, "auto", "unexpected input 'windows'; the model takes window"),
        ([["a"] * 64], "auto", "input 'window': expected numbers (float32), got string"),
        ([0.0] * 64, "sometimes", 'unknown privacy mode "sometimes"'),
        ([0.0] * 3 + [float("nan")] + [0.0] * 60, "auto", "input 'window': expected finite values, got NaN or Inf at index [0, 3]"),
        ([[0.0] * 64, [0.0] * 63 + [float("-inf")]], "prefer-cloud", "expected finite values, got NaN or Inf at index [1, 63]"),
        (None, "auto", "predict() needs an input"),
        ("64 zeros", "auto", "input 'window' must be an array, a typed array or {data, shape}, got string"),
        ({"data": [0.0] * 64, "shape": [2, 64]}, "auto", "input 'window': expected float32[?, 64], got shape [2, 64] with 64 values"),
        ({"window": [0.0] * 64, "\u1e8b": [1]}, "auto", "unexpected input '\u1e8b'; the model takes window"),
    ],
)
def test_bad_input_gets_one_clear_message_and_nothing_is_sent(driver, input, privacy, message):
    driver.create(FORECASTER)
    result = driver.predict(input, privacy)
    assert message in result["error"], result
    assert driver.page.errors == []


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, 'PredictionHandler.create needs {model: "NAME"}'),
        ({"registry": "/models", "model": "nosuch"}, "cannot reach the model registry and no version of nosuch is cached"),
    ],
)
def test_create_with_bad_options_rejects_with_one_clear_message(driver, options, message):
    error = driver.page.evaluate(
        """async (options) => {
          const { PredictionHandler } = await import('/src/prediction-handler.js');
          try { await PredictionHandler.create(options); return null; } catch (error) { return error.message; }
        }""",
        options,
    )
    assert error is not None and message in error, error


def test_concurrent_predictions_each_get_their_own_answer(driver, web_models):
    assert driver.create(LSTM_MARKED_ORT)["backend"] == "onnxruntime-web/wasm"
    batches = [np.random.default_rng(30 + i).standard_normal((i + 1, 16, 1)).astype(np.float32) for i in range(5)]
    results = driver.page.evaluate(
        "(inputs) => Promise.all(inputs.map((input) => window.handler.predict(input, { privacy: 'local-only' })))",
        [b.tolist() for b in batches],
    )
    session = onnxruntime.InferenceSession(str(web_models.registry / LSTM_MARKED_ORT / "1" / "model.onnx"))
    for batch, result in zip(batches, results):
        assert result["ranOn"] == "edge"
        np.testing.assert_allclose(data(result), session.run(None, {"sequence": batch})[0], atol=1e-5)
