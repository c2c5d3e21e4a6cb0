"""Issue 28 item 6: a federated round over `--trainable all` on a model with an LSTM (the demo
forecaster, small), against a real stack (`Stack`: aggregator on a SQLite file, MMS, the site) and
real Chromium.

The page personalises every tensor (conv, LSTM W/R/bias, Dense) on onnxruntime-web; its personalised
predictions are onnxruntime's on model.onnx with the parameters it trained (the edge lowering
unrolled the LSTM, so the personalised model runs the cloud file). It shares its update, a second
client (Python, `train`) shares another, and the round publishes version 2 whose model.onnx holds
FedAvg of the two, and whose model.edge.onnx (lowered again from the new cloud file) predicts what
model.onnx with those averaged parameters predicts, within the parity criterion, in onnxruntime and
in the page on ONNX.js once the page adopts it.
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
from edgecloud.federation import FederatedOptions
from edgecloud.stack import Stack, StackOptions
from export.federated_version import trainable_parameters
from export.parity import Criterion
from export.train.runner import personalized_model, train
from mms_handlers.archive import build_archive
from mms_handlers.server import ServerConfig
from tests.conftest import free_port

from .trainer_driver import TrainerDriver

pytestmark = [pytest.mark.integration, pytest.mark.keras]
NAME, WINDOW, HORIZON, BATCH, RATE = "fc_all", 64, 8, 4, 0.01
PARITY = Criterion()


def person(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """One person's series: their own frequency and offset (so the two updates differ)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 6, (count, 1))
    t = start + np.linspace(0, 6, WINDOW + HORIZON)[None, :] * (1 + 0.2 * seed)
    series = (np.sin(t) + 0.3 * seed + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)
    return series[:, :WINDOW, None], series[:, WINDOW:]


def run(model: bytes | Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def assert_parity(reference: np.ndarray, candidate: np.ndarray) -> None:
    figure = PARITY.judge(reference, candidate)
    assert figure.passed, f"differs by {figure.max_abs_diff:.3g} ({PARITY.describe()})"


@pytest.fixture
def stack(tmp_path: Path):
    import keras
    import keras_tuner

    from edgecloud.builder.templates import ecg_forecaster
    from export.pipeline import export_model

    keras.utils.set_random_seed(3)
    ecg_forecaster(keras_tuner.HyperParameters(), window=WINDOW, horizon=HORIZON).save(tmp_path / "fc.keras")
    np.save(tmp_path / "fc.npy", person(0, 1)[0])
    registry, store = tmp_path / "registry", tmp_path / "store"
    version_dir = export_model(
        tmp_path / "fc.keras", name=NAME, version="1", out=registry, sample=tmp_path / "fc.npy", trainable="all", train_batch=BATCH
    ).version_dir
    build_archive(version_dir, store)
    options = StackOptions(
        server=ServerConfig(model_store=store, inference_port=free_port(), management_port=free_port()),
        registry=registry,
        web_port=free_port(),
        federated=FederatedOptions([NAME], FederatedSettings(min_clients=2)),
    )
    running = Stack(options).start()
    yield running
    running.stop()


def test_a_round_over_all_layers_with_an_lstm_publishes_fedavg_in_both_files(stack, page) -> None:
    config, folder = stack.site.config, stack.options.registry / NAME
    entry = json.loads((folder / "1" / "model.json").read_text())["training"]
    assert entry["trainable"] == "all" and entry["trained"]["tensors"] == 7
    assert all(list(p["locations"]) == ["model.onnx"] for p in entry["parameters"])  # the edge LSTM is unrolled per gate
    base = trainable_parameters(folder / "1")

    # The page: personalise every tensor, predict with the personalised model, share the update.
    x, y = person(1, 8)
    trainer = TrainerDriver(page, stack.site, None)
    page.goto(f"{stack.site.url}/harness/index.html")
    page.wait_for_function("window.harnessReady === true")
    page.evaluate(
        """async ({ model, cloud, federated }) => {
          const { PredictionHandler } = await import('/src/prediction-handler.js');
          window.handler = await PredictionHandler.create({ registry: '/models', model, cloud, federated,
            update: { enabled: true, intervalMs: 3600000, conditions: { battery: true } } });
          await window.handler.edgeReady();
        }""",
        {"model": NAME, "cloud": config["cloud"], "federated": config["federated"]},
    )
    result = trainer.personalize(x, y, epochs=1, batchSize=BATCH, learningRate=RATE, shuffle=False)
    assert "error" not in result, result
    assert result["backend"].startswith("onnxruntime-web/") and result["steps"] == 2
    got = trainer.parameters()
    ours = train(folder / "1", x, y, epochs=1, learning_rate=RATE, shuffle=False)
    assert set(got) == set(base) and len(got) == 7
    for name in got:
        assert np.abs(got[name] - ours.parameters[name]).max() <= 1e-5, name
        assert np.abs(got[name] - base[name]).max() > 0, name  # every tensor moved
    probe = person(5, 1)[0]
    edge = trainer.predict(probe, "local-only")
    assert edge["ranOn"] == "edge" and edge["personalized"] is True and edge["backend"] == "onnxruntime-web/wasm", edge
    assert "no location in model.edge.onnx" in edge["runtimeReason"]
    output = next(iter(edge["outputs"].values()))
    assert_parity(run(personalized_model(folder / "1", got), probe), np.asarray(output["data"], np.float32).reshape(1, HORIZON))
    shared = page.evaluate("() => window.handler.shareUpdate()")
    assert shared["accepted"] is True and shared["round"] == 1, shared
    reported = trainer.personalization()

    # A second client: another person's update, trained by the exporter's own step graph.
    x2, y2 = person(2, 12)
    theirs = train(folder / "1", x2, y2, epochs=1, learning_rate=RATE, shuffle=False).parameters
    body = {
        "client": "python-client",
        "base_version": "1",
        "samples": 12,
        "delta": {n: {"shape": list(v.shape), "data": (theirs[n] - v).ravel().tolist()} for n, v in base.items()},
    }
    request = urllib.request.Request(
        f"{config['federated']}/{NAME}/updates",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert json.loads(response.read())["accepted"] is True

    latest = folder / "latest.json"
    deadline = time.monotonic() + 300
    while json.loads(latest.read_text())["version"] != "2" and time.monotonic() < deadline:
        time.sleep(0.25)
    assert json.loads(latest.read_text())["version"] == "2"

    # Version 2 = base + Σ nᵢ(pᵢ − base) / Σ nᵢ, in model.onnx; model.edge.onnx lowered again from it.
    page_values = {n: np.asarray(v["data"], np.float64).reshape(base[n].shape) for n, v in reported["parameters"].items()}
    averaged = {n: (v + (8 * (page_values[n] - v) + 12 * (theirs[n] - v)) / 20).astype(np.float32) for n, v in base.items()}
    new = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(folder / "2" / "model.onnx")).graph.initializer}
    for name, value in averaged.items():
        np.testing.assert_allclose(new[name], value, rtol=0, atol=1e-6)
    manifest = json.loads((folder / "2" / "model.json").read_text())
    assert manifest["federated"]["relowered"] == ["model.edge.onnx"] and manifest["parity"]["federated_cloud_vs_edge"]["passed"]
    want = run(personalized_model(folder / "1", averaged), probe)
    assert PARITY.judge(run(folder / "1" / "model.onnx", probe), want).ratio > 1  # the round changed the predictions
    for file in ("model.onnx", "model.edge.onnx"):
        assert_parity(want, run(folder / "2" / file, probe))

    # The page adopts version 2 (its v1 personalisation is dropped) and runs the new edge file on ONNX.js.
    checked = page.evaluate("() => window.handler.updater.check()")
    assert checked["reason"] == "switched 1 → 2", checked
    page.wait_for_function("() => window.handler.current.runner && window.handler.current.runner.backend")
    shared_v2 = trainer.predict(probe, "local-only")
    assert shared_v2["modelVersion"] == "2" and shared_v2["personalized"] is False and shared_v2["backend"].startswith("onnxjs/"), shared_v2
    output = next(iter(shared_v2["outputs"].values()))
    assert_parity(want, np.asarray(output["data"], np.float32).reshape(1, HORIZON))
    assert page.errors == []
