"""Item 8 of federated averaging, in real Chromium against a real stack (`Stack` with the
aggregator, a real MMS, a SQLite file): three browser contexts, each with its own person's data,
personalise and share; the round closes; version 2's parameters are the FedAvg of what the three
pages reported; MMS serves version 2 as onnxruntime runs the new file; the pages adopt it.

The trainable model is the exporter's own output: a small PyTorch MLP exported as
`edgecloud export --trainable head` does (`export_torch_module`, the function the command calls),
so the pages run the autodiff step graph `train.onnx` (Adam) the exporter wrote and proved.
"""

from __future__ import annotations

import json
import time
import urllib.error
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
from export.train.runner import train
from mms_handlers.archive import build_archive
from mms_handlers.server import ServerConfig
from tests.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.torch]
NAME = "web_fed"
FEATURES, OUTPUTS = 6, 3
RATE = 0.02

CREATE_AND_SHARE = """async ({ model, cloud, federated, data, privacy, rate }) => {
  const { PredictionHandler } = await import('/src/prediction-handler.js');
  window.handler = await PredictionHandler.create({ registry: '/models', model, cloud, federated,
    policy: privacy ? { privacy } : {}, update: { enabled: true, intervalMs: 3600000, conditions: { battery: true } } });
  await window.handler.edgeReady();
  const trained = await window.handler.personalize(data, { epochs: 2, learningRate: rate, shuffle: false });
  const reported = window.handler.personalization();
  try {
    return { trained, reported, shared: await window.handler.shareUpdate() };
  } catch (error) {
    return { trained, reported, error: error.message, code: error.code };
  }
}"""


def person(seed: int, count: int) -> dict:
    """One person's examples: their own gain and offset on a shared relation (so each update differs)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, FEATURES)).astype(np.float32)
    y = (0.5 + 0.3 * seed) * np.tanh(x[:, :OUTPUTS]) + 0.2 * seed + 0.05 * rng.standard_normal((count, OUTPUTS))
    return {"inputs": x.tolist(), "targets": y.astype(np.float32).tolist()}


def export_trainable(registry: Path) -> Path:
    """Version 1 of NAME, exported with a head-only training step (Adam, batch 8)."""
    import torch

    from export.torch_module import export_torch_module

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(FEATURES, 16), torch.nn.Tanh(), torch.nn.Linear(16, OUTPUTS))
    result = export_torch_module(
        module,
        torch.randn(1, FEATURES),
        name=NAME,
        version="1",
        out=registry,
        input_names=["x"],
        output_names=["y"],
        trainable="head",
        optimizer="adam",
        train_batch=8,
    )
    return result.version_dir


@pytest.fixture
def stack(tmp_path: Path):
    registry, store = tmp_path / "registry", tmp_path / "store"
    version_dir = export_trainable(registry)
    assert (version_dir / "train.onnx").is_file() and (registry / NAME / "latest.json").is_file()
    build_archive(version_dir, store)
    options = StackOptions(
        server=ServerConfig(model_store=store, inference_port=free_port(), management_port=free_port()),
        registry=registry,
        web_port=free_port(),
        federated=FederatedOptions([NAME], FederatedSettings(min_clients=3)),
    )
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
            result = page.evaluate(
                CREATE_AND_SHARE,
                {"model": NAME, "cloud": config["cloud"], "federated": config["federated"], "data": person(seed, count), "rate": RATE},
            )
            assert "error" not in result, result
            assert result["shared"]["accepted"] is True and result["shared"]["round"] == 1, result["shared"]
            assert result["reported"]["samples"] == count
            # What the page trained is what the exporter's train.onnx computes under onnxruntime.
            data = person(seed, count)
            want = train(
                registry / "1",
                np.asarray(data["inputs"], np.float32),
                np.asarray(data["targets"], np.float32),
                epochs=2,
                learning_rate=RATE,
                shuffle=False,
            )
            for name, value in want.parameters.items():
                got = np.asarray(result["reported"]["parameters"][name]["data"], np.float32).reshape(value.shape)
                assert np.abs(got - value).max() <= 1e-5, name
            pages.append(page)
            reports.append(result["reported"])

        # Local-only never sends one.
        quiet = browser.new_context().new_page()
        quiet.goto(f"{stack.site.url}/harness/index.html")
        quiet.wait_for_function("window.harnessReady === true")
        refused = quiet.evaluate(
            CREATE_AND_SHARE,
            {"model": NAME, "cloud": None, "federated": config["federated"], "data": person(4, 10), "privacy": "local-only", "rate": RATE},
        )
        assert refused["code"] == "not-allowed" and "local-only" in refused["error"]

        latest = registry / "latest.json"
        deadline = time.monotonic() + 120
        while json.loads(latest.read_text())["version"] != "2" and time.monotonic() < deadline:
            time.sleep(0.25)
        assert json.loads(latest.read_text())["version"] == "2"

        # Version 2 = base + Σ nᵢ(pᵢ − base) / Σ nᵢ of what the pages reported.
        assert set(base) == {"2.weight", "2.bias"}  # the head the exporter made trainable
        total = sum(r["samples"] for r in reports)
        new = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(registry / "2" / "model.onnx")).graph.initializer}
        for name, value in base.items():
            reported = [np.asarray(r["parameters"][name]["data"], np.float64).reshape(value.shape) for r in reports]
            expected = value + sum(r["samples"] * (p - value) for r, p in zip(reports, reported)) / total
            np.testing.assert_allclose(new[name], expected, rtol=0, atol=1e-6)
            assert not np.allclose(new[name], value)

        # MMS serves version 2 (the replica's watcher registers it once latest.json moved) and answers
        # as onnxruntime on the new file.
        x = np.asarray(person(5, 2)["inputs"], np.float32)
        deadline = time.monotonic() + 120
        while (answer := served_answer(config["cloud"], f"{NAME}-v2", x)) is None and time.monotonic() < deadline:
            time.sleep(0.25)
        assert answer is not None, f"{NAME}-v2 is not served"
        expected = onnxruntime.InferenceSession(str(registry / "2" / "model.onnx")).run(None, {"x": x})[0]
        before = onnxruntime.InferenceSession(str(registry / "1" / "model.onnx")).run(None, {"x": x})[0]
        assert answer["model_version"] == "2" and np.abs(expected - before).max() > 1e-3
        np.testing.assert_allclose(answer["outputs"]["y"], expected, rtol=1e-6, atol=1e-6)

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


def served_answer(cloud: str, mms_name: str, x: np.ndarray) -> dict | None:
    """The plain JSON answer of `mms_name`, or None while the cloud does not serve it yet: 404 before the
    replica's watcher registers the version in MMS, MMS's own 503 ("No worker is available") while its
    worker is starting."""
    body = json.dumps({"inputs": {"x": x.tolist()}}).encode()
    request = urllib.request.Request(f"{cloud}/predictions/{mms_name}", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code in (404, 503):
            return None
        raise
