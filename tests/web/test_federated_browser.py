"""Item 8 of federated averaging, in real Chromium against a real stack (`Stack` with the
aggregator, a real MMS, a SQLite file): three browser contexts, each with its own person's data,
personalise and share; the round closes; version 2's parameters are the FedAvg of what the three
pages reported; MMS serves version 2 as onnxruntime runs the new file; the pages adopt it.

The trainable model is the browser trainer's plumbing fixture (train_fixture.py): a contract-
following step graph, not the exporter's output.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import numpy_helper

from aggregation.settings import FederatedSettings
from edgecloud.browser import CHROMIUM, CHROMIUM_ARGS
from edgecloud.federation import FederatedOptions
from edgecloud.stack import Stack, StackOptions
from export.federated_version import trainable_parameters
from mms_handlers.archive import build_archive
from mms_handlers.server import ServerConfig
from tests.conftest import free_port

from .registry_models import fitted_forecaster, pulse_signal, windows, write_version
from .train_fixture import make_trainable

pytestmark = [pytest.mark.integration]
NAME = "web_fed"

CREATE_AND_SHARE = """async ({ model, cloud, federated, data, privacy }) => {
  const { PredictionHandler } = await import('/src/prediction-handler.js');
  window.handler = await PredictionHandler.create({ registry: '/models', model, cloud, federated,
    policy: privacy ? { privacy } : {}, update: { enabled: true, intervalMs: 3600000, conditions: { battery: true } } });
  await window.handler.edgeReady();
  const trained = await window.handler.personalize(data, { epochs: 2, batchSize: 8, learningRate: 0.05, seed: 1 });
  const reported = window.handler.personalization();
  try {
    return { trained, reported, shared: await window.handler.shareUpdate() };
  } catch (error) {
    return { trained, reported, error: error.message, code: error.code };
  }
}"""


def person(seed: int, count: int) -> dict:
    x, y = windows(pulse_signal(count + 72, period=30.0 + 6 * seed, noise=0.05, seed=seed))
    return {"inputs": x[:count].tolist(), "targets": y[:count].tolist()}


@pytest.fixture
def stack(tmp_path: Path):
    registry, store = tmp_path / "registry", tmp_path / "store"
    version_dir = write_version(registry, NAME, "1", fitted_forecaster()[0])
    make_trainable(version_dir)
    build_archive(version_dir, store)
    options = StackOptions(
        server=ServerConfig(model_store=store, inference_port=free_port(), management_port=free_port()),
        registry=registry, web_port=free_port(),
        federated=FederatedOptions([NAME], FederatedSettings(min_clients=3)),
    )  # fmt: skip
    running = Stack(options).start()
    yield running
    running.stop()


def test_three_pages_personalise_share_and_adopt_the_fedavg_version(stack, playwright) -> None:
    config = stack.site.config
    registry = stack.options.registry / NAME
    base = trainable_parameters(registry / "1")
    requests: list[tuple[str, str]] = []
    # One browser, three isolated contexts (the session's persistent context has one storage).
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        pages, reports = [], []
        for seed, count in ((1, 12), (2, 20), (3, 28)):
            page = browser.new_context().new_page()  # its own storage: its own client id and checkpoints
            page.on("request", lambda r: r.method == "POST" and requests.append((r.url, r.post_data or "")))
            page.goto(f"{stack.site.url}/harness/index.html")
            page.wait_for_function("window.harnessReady === true")
            result = page.evaluate(CREATE_AND_SHARE, {"model": NAME, "cloud": config["cloud"],
                                                      "federated": config["federated"], "data": person(seed, count)})  # fmt: skip
            assert "error" not in result, result
            assert result["shared"]["accepted"] is True and result["shared"]["round"] == 1, result["shared"]
            assert result["reported"]["samples"] == count
            pages.append(page)
            reports.append(result["reported"])

        # Local-only never sends one.
        quiet = browser.new_context().new_page()
        quiet.goto(f"{stack.site.url}/harness/index.html")
        quiet.wait_for_function("window.harnessReady === true")
        refused = quiet.evaluate(CREATE_AND_SHARE, {"model": NAME, "cloud": None, "federated": config["federated"],
                                                    "data": person(4, 10), "privacy": "local-only"})  # fmt: skip
        assert refused["code"] == "not-allowed" and "local-only" in refused["error"]

        latest = registry / "latest.json"
        deadline = time.monotonic() + 120
        while json.loads(latest.read_text())["version"] != "2" and time.monotonic() < deadline:
            time.sleep(0.25)
        assert json.loads(latest.read_text())["version"] == "2"

        # Version 2 = base + Σ nᵢ(pᵢ − base) / Σ nᵢ of what the pages reported.
        total = sum(r["samples"] for r in reports)
        new = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(registry / "2" / "model.onnx")).graph.initializer}
        for name, value in base.items():
            reported = [np.asarray(r["parameters"][name]["data"], np.float64).reshape(value.shape) for r in reports]
            expected = value + sum(r["samples"] * (p - value) for r, p in zip(reports, reported)) / total
            np.testing.assert_allclose(new[name], expected, rtol=0, atol=1e-6)
            assert not np.allclose(new[name], value)

        # MMS serves version 2 and answers as onnxruntime on the new file.
        x = np.asarray(person(5, 2)["inputs"], np.float32)
        request = urllib.request.Request(f"{config['cloud']}/predictions/{NAME}-v2", data=json.dumps({"inputs": {"window": x.tolist()}}).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request) as response:
            answer = json.loads(response.read())
        expected = onnxruntime.InferenceSession(str(registry / "2" / "model.onnx")).run(None, {"window": x})[0]
        assert answer["model_version"] == "2"
        np.testing.assert_allclose(answer["outputs"]["forecast"], expected, rtol=1e-6, atol=1e-6)

        # The pages adopt it through their background update.
        for page in pages:
            checked = page.evaluate("() => window.handler.updater.check()")
            assert checked["reason"] == "switched 1 → 2" and page.evaluate("() => window.handler.modelVersion") == "2"
    finally:
        browser.close()

    # What left the pages: the three updates, none carrying an example.
    updates = [json.loads(body) for url, body in requests if url.endswith(f"/federated/{NAME}/updates")]
    assert len(updates) == 3 and all(set(u) == {"client", "base_version", "samples", "delta"} for u in updates)
    assert len({u["client"] for u in updates}) == 3
    assert all(url.endswith("/updates") for url, _ in requests)
