"""Fallback both ways, with real failures: a model ONNX.js cannot run, a tampered file, an edge
file that throws, an edge past its time budget; MMS with no worker free, stopped, slow,
and the browser offline."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from mms_handlers.server import MmsServer, ServerConfig

from ..conftest import free_port
from ..mms_handlers.mars import remade
from .conftest import EDGE_VARIANT, FORECASTER, HEAVY, LSTM_MARKED_ONNXJS, PINNED, SLOW_CLOUD, TAMPERED
from .test_routing import data, expected_forecast, window

pytestmark = [pytest.mark.integration]


def reference(registry: Path, name: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(registry / name / "1" / "model.onnx"))
    return session.run(None, feeds)[0]


# -- edge → cloud ---------------------------------------------------------------------------


def test_a_model_onnxjs_cannot_run_is_answered_by_the_cloud(driver, web_models):
    status = driver.create(LSTM_MARKED_ONNXJS)
    assert status["state"] == "unavailable"
    assert "cannot resolve operator 'LSTM'" in status["reason"]
    sequence = np.random.default_rng(6).standard_normal((2, 16, 1)).astype(np.float32)

    result = driver.predict(sequence.tolist(), "prefer-edge")
    assert result["ranOn"] == "cloud" and result["backend"] == "mms/onnxruntime"
    assert result["fallbackReason"].startswith("edge-unavailable: no onnxjs backend could run the model")
    np.testing.assert_allclose(data(result), reference(web_models.registry, LSTM_MARKED_ONNXJS, {"sequence": sequence}), atol=1e-5)

    auto = driver.predict(sequence.tolist(), "auto")  # auto knows the edge is out: cloud first, no fallback
    assert (auto["ranOn"], auto["route"], auto["fallbackReason"]) == ("cloud", "auto: the edge cannot run this model", None)
    assert driver.page.errors == []


def test_a_tampered_model_file_is_rejected_and_the_cloud_answers(driver, site, web_models):
    status = driver.create(TAMPERED)
    assert status["state"] == "unavailable"
    assert status["reason"].startswith("edge-integrity: model.onnx of v1 has SHA-256")
    result = driver.predict(window(7).tolist(), "prefer-edge")
    assert result["ranOn"] == "cloud"
    assert result["fallbackReason"].startswith("edge-integrity:") and "rejected" in result["fallbackReason"]
    cached = driver.page.evaluate(
        "async (url) => Boolean(await (await caches.open('edgecloud-models-v1')).match(url))",
        f"{site.url}/models/{TAMPERED}/1/model.onnx",
    )
    assert cached is False
    refused = driver.predict(window(7).tolist(), "local-only")
    assert refused["code"] == "edge-integrity" and "the input was not sent anywhere" in refused["error"]


def test_a_tampered_cached_copy_is_purged_and_fetched_again(driver, site, web_models):
    driver.create(FORECASTER)
    url = f"{site.url}/models/{FORECASTER}/1/model.onnx"
    driver.page.evaluate(
        """async (url) => {
          const cache = await caches.open('edgecloud-models-v1');
          const bytes = new Uint8Array(await (await cache.match(url)).arrayBuffer());
          bytes[bytes.length >> 1] ^= 0xff;
          await cache.put(url, new Response(bytes));
        }""",
        url,
    )
    status = driver.create(FORECASTER)  # a second handler reads the model from the cache
    assert status["state"] == "ready"
    digest = driver.page.evaluate(
        """async (url) => {
          const { sha256Hex } = await import('/src/model-store.js');
          const cache = await caches.open('edgecloud-models-v1');
          return sha256Hex(await (await cache.match(url)).arrayBuffer());
        }""",
        url,
    )
    manifest = json.loads((web_models.registry / FORECASTER / "1" / "model.json").read_text())
    assert digest == manifest["files"]["model.onnx"]["sha256"]
    x = window(8)
    result = driver.predict(x.tolist(), "local-only")
    np.testing.assert_allclose(data(result), expected_forecast(web_models, x), atol=1e-5)


def test_an_edge_that_throws_falls_back_to_the_cloud(driver, web_models):
    status = driver.create(EDGE_VARIANT)
    assert status["state"] == "ready"  # its edge file (model.edge.onnx) loads and runs one row
    one = window(9)
    assert driver.predict(one.tolist(), "prefer-edge")["ranOn"] == "edge"
    batch = np.stack([window(10), window(11)])
    result = driver.predict(batch.tolist(), "prefer-edge")
    assert result["ranOn"] == "cloud"
    assert result["fallbackReason"].startswith("edge-error:")
    np.testing.assert_allclose(data(result), expected_forecast(web_models, batch), atol=1e-5)


def test_a_browser_file_pinned_at_export_sends_other_shapes_to_the_cloud(driver, web_models):
    assert driver.create(PINNED)["state"] == "ready"
    assert driver.predict(window(13).tolist(), "prefer-edge")["ranOn"] == "edge"
    batch = np.stack([window(14), window(15)])
    result = driver.predict(batch.tolist(), "prefer-edge")
    assert result["ranOn"] == "cloud", result
    assert result["fallbackReason"] == (
        "edge-shape: the browser file takes input 'window' only as float32[1, 64] (pinned at export), this one is [2, 64]"
    )
    np.testing.assert_allclose(data(result), expected_forecast(web_models, batch), atol=1e-5)
    refused = driver.predict(batch.tolist(), "local-only")
    assert refused.get("code") == "edge-shape", refused
    assert "pinned at export" in refused["error"] and "the input was not sent anywhere" in refused["error"]


def test_an_edge_past_its_time_budget_falls_back_and_restarts(driver, web_models):
    assert driver.create(HEAVY, policy={"edgeTimeoutMs": 50})["backend"] == "onnxjs/cpu"
    x = np.random.default_rng(12).standard_normal((32, 1024)).astype(np.float32)
    result = driver.predict({"x": {"data": x.ravel().tolist(), "shape": [32, 1024]}}, "prefer-edge")
    assert result["ranOn"] == "cloud", result.get("error")
    assert result["fallbackReason"] == "edge-timeout: no answer within 50 ms"
    np.testing.assert_allclose(data(result), reference(web_models.registry, HEAVY, {"x": x}), atol=1e-4)
    # The stuck worker was replaced: a small request runs on the edge again.
    assert driver.page.evaluate("() => window.handler.edgeReady()")["state"] == "ready"
    driver.page.evaluate("() => { window.handler.policy.edgeTimeoutMs = 60000; }")
    small = driver.predict({"x": x[:1].ravel().tolist()}, "local-only")
    assert small["ranOn"] == "edge", small
    np.testing.assert_allclose(data(small), reference(web_models.registry, HEAVY, {"x": x[:1]}), atol=1e-4)


# -- cloud → edge ---------------------------------------------------------------------------


def _management(mms: MmsServer, method: str, query: str) -> int:
    request = urllib.request.Request(f"{mms.config.management_url}/models{query}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def own_mms(web_models, model_store):
    """A separate MMS (this test stops it) serving web_fc, plus a model whose worker cannot load."""
    store = Path(tempfile.mkdtemp(prefix="edgecloud-own-store-"))
    shutil.copy(model_store / f"{FORECASTER}.mar", store)
    # A sound archive around a file that is no ONNX model (edgecloud archive itself refuses to write one).
    remade(model_store / f"{FORECASTER}.mar", store / "web_broken.mar", {"model.onnx": b"not an onnx file"})
    server = MmsServer(ServerConfig(model_store=store, inference_port=free_port(), management_port=free_port(), cors_origins=["*"]))
    server.start()
    server.register(f"{FORECASTER}.mar")
    yield server
    server.stop()
    shutil.rmtree(store, ignore_errors=True)


def test_cloud_5xx_unhealthy_and_stopped_fall_back_to_the_edge(driver, own_mms, web_models):
    driver.create(FORECASTER, cloud=own_mms.config.inference_url, policy={"healthTtlMs": 60000})
    x = window(13)
    first = driver.predict(x.tolist(), "prefer-cloud")
    assert (first["ranOn"], first["fallbackReason"]) == ("cloud", None)

    # Another model whose worker cannot load: /ping stops saying Healthy, but this model is served.
    assert _management(own_mms, "POST", "?url=web_broken.mar&initial_workers=1&synchronous=false") in (200, 202)
    health = own_mms.ping()
    for _ in range(150):  # the failing worker needs a moment to fail
        if health != "Healthy":
            break
        driver.page.wait_for_timeout(200)
        health = own_mms.ping()
    assert health in ("Partial Healthy", "Unhealthy")
    driver.page.evaluate("() => { window.handler.cloud.lastHealth = null; }")
    result = driver.predict(x.tolist(), "prefer-cloud")
    assert (result["ranOn"], result["fallbackReason"]) == ("cloud", None), result
    assert driver.status()["cloud"]["health"] == "serving"

    # No worker left for the model: registered (its health check still passes), but MMS answers 503.
    assert _management(own_mms, "PUT", f"/{FORECASTER}?min_worker=0&max_worker=0&synchronous=true") == 200
    result = driver.predict(x.tolist(), "prefer-cloud")
    assert result["ranOn"] == "edge" and result["backend"] == "onnxjs/wasm"
    assert result["fallbackReason"].startswith("cloud-busy: cloud answered 503 ServiceUnavailableException: No worker")
    np.testing.assert_allclose(data(result), expected_forecast(web_models, x), atol=1e-5)
    assert driver.status()["cloud"]["health"] == "cloud-busy"  # counted against the verdict, kept healthTtlMs
    assert driver.predict(x.tolist(), "prefer-cloud")["fallbackReason"] == result["fallbackReason"]

    # MMS stopped mid test: a network error.
    own_mms.stop()
    driver.page.evaluate("() => { window.handler.cloud.lastHealth = null; }")
    result = driver.predict(x.tolist(), "prefer-cloud")
    assert result["ranOn"] == "edge"
    assert result["fallbackReason"].startswith("cloud-unreachable:")
    np.testing.assert_allclose(data(result), expected_forecast(web_models, x), atol=1e-5)

    # Both sides out: one clear error naming both reasons.
    driver.create(LSTM_MARKED_ONNXJS, cloud=own_mms.config.inference_url)
    failed = driver.predict([[[0.0]] * 16], "prefer-cloud")
    assert failed["code"] == "no-answer"
    assert "cloud-unreachable" in failed["error"] and "edge-unavailable" in failed["error"]
    # Chromium itself logs each failed request ("Failed to load resource"); nothing else may appear.
    assert [e for e in driver.page.errors if not e.startswith("Failed to load resource")] == []


def test_a_slow_cloud_times_out_and_the_edge_answers(driver, web_models):
    driver.create(SLOW_CLOUD, policy={"cloudTimeoutMs": 2000})
    x = window(14)
    result = driver.predict(x.tolist(), "prefer-cloud")  # MMS holds a lone request for its 8 s batch delay
    assert result["ranOn"] == "edge"
    assert result["fallbackReason"] == "cloud-timeout: POST /predictions/web_slow gave no answer within 2000 ms"
    np.testing.assert_allclose(data(result), expected_forecast(web_models, x), atol=1e-5)


def test_offline_the_edge_answers(driver, browser_context, web_models):
    driver.create(FORECASTER)
    x = window(15)
    assert driver.predict(x.tolist(), "prefer-cloud")["ranOn"] == "cloud"
    browser_context.set_offline(True)
    try:
        result = driver.predict(x.tolist(), "prefer-cloud")
        auto = driver.predict(x.tolist(), "auto")
    finally:
        browser_context.set_offline(False)
    assert result["ranOn"] == "edge"
    assert result["fallbackReason"] == "cloud-unreachable: the browser is offline"
    np.testing.assert_allclose(data(result), expected_forecast(web_models, x), atol=1e-5)
    assert (auto["ranOn"], auto["route"]) == ("edge", "auto: the browser is offline")
