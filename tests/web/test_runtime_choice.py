"""Which edge runtime the Prediction Handler runs, in real Chromium: the fastest verified one by
default (model.json's `edge.ranking`), the one `policy.edgeRuntime` forces, and on data saver the
small download until the big one is in the HTTP cache. Also: the files each runtime fetches are the
ones `edgecloud verify` sizes (edgecloud/runtime_files.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecloud.paths import node_modules
from edgecloud.runtime_files import RUNTIME_FILES, download_bytes
from export.manifest import read_manifest, write_manifest

from .registry_models import fitted_forecaster, verified_table, write_version

pytestmark = [pytest.mark.integration]

ORT_FIRST = "web_rank_ort"  # ranking: onnxruntime-web/wasm, onnxjs/wasm, onnxjs/cpu
ONNXJS_FIRST = "web_rank_js"  # ranking: onnxjs/wasm, onnxruntime-web/wasm
CLOUD_FILE_FIRST = "web_rank_cloud"  # its own edge file; ranking: onnxruntime-web/wasm on model.onnx, onnxjs/wasm
ORDERS = {
    ORT_FIRST: [("onnxruntime-web", "wasm", 0.8), ("onnxjs", "wasm", 8.9), ("onnxjs", "cpu", 11.2)],
    ONNXJS_FIRST: [("onnxjs", "wasm", 0.2), ("onnxruntime-web", "wasm", 0.3)],
    CLOUD_FILE_FIRST: [("onnxruntime-web", "wasm", 0.4, "model.onnx"), ("onnxjs", "wasm", 8.9)],
}


def write_ranked(registry: Path, name: str, order: list[tuple]) -> None:
    """The forecaster with the verification table and ranking `edgecloud verify` would write for
    `order` ((runtime, backend, median ms[, file other than the edge file]) rows)."""
    model = fitted_forecaster()[0]
    version_dir = write_version(registry, name, "1", model, edge_model=model if name == CLOUD_FILE_FIRST else None)
    manifest = read_manifest(version_dir)
    table = verified_table(manifest["edge"]["file"], cpu=True, wasm=True, webgl=False)
    manifest["edge"]["ranking"] = []
    for runtime, backend, ms, *other_file in order:
        on = {"file": other_file[0]} if other_file else {}
        if runtime == "onnxruntime-web":
            table["results"].append({"runtime": runtime, "backend": backend, "passed": True, **on})
        manifest["edge"]["ranking"].append(
            {"runtime": runtime, "backend": backend, "median_ms": ms, "download_bytes": download_bytes(runtime), **on}
        )
    manifest["edge"]["verified"] = table
    write_manifest(version_dir, manifest)


@pytest.fixture(scope="module")
def ranked(web_models):
    for name, order in ORDERS.items():
        write_ranked(web_models.registry, name, order)
    return web_models


@pytest.fixture
def fresh(driver, ranked):
    """The driver on a page whose HTTP cache and runtime notes are empty, data saver off afterwards."""
    cdp = driver.page.context.new_cdp_session(driver.page)
    cdp.send("Network.clearBrowserCache")
    driver.page.evaluate("() => localStorage.clear()")
    driver.cdp = cdp
    yield driver
    cdp.send("Emulation.setDataSaverOverride", {})


def expected(ranked, x: np.ndarray) -> np.ndarray:
    weights, bias = ranked.forecaster
    return x.reshape(-1, 64) @ weights + bias


def predict_locally(driver, ranked) -> dict:
    x = np.random.default_rng(7).standard_normal(64).astype(np.float32)
    result = driver.predict(x.tolist(), "local-only")
    assert "error" not in result, result
    (tensor,) = result["outputs"].values()
    np.testing.assert_allclose(np.asarray(tensor["data"], np.float32).reshape(tensor["shape"]), expected(ranked, x), atol=1e-5)
    return result


def test_the_fastest_verified_runtime_runs_by_default(driver, ranked):
    status = driver.create(ORT_FIRST, cloud=None)
    assert (status["state"], status["backend"], status["runtime"]) == ("ready", "onnxruntime-web/wasm", "onnxruntime-web")
    result = predict_locally(driver, ranked)
    assert (result["backend"], result["runtime"]) == ("onnxruntime-web/wasm", "onnxruntime-web")
    assert result["runtimeReason"] == "fastest verified: onnxruntime-web/wasm, 0.80 ms (next: onnxjs/wasm, 8.90 ms)"
    # the same handler code follows another ranking: it is the ranking that decides, not a fixed preference
    assert driver.create(ONNXJS_FIRST, cloud=None)["backend"] == "onnxjs/wasm"
    assert predict_locally(driver, ranked)["runtimeReason"].startswith("fastest verified: onnxjs/wasm")
    assert driver.page.errors == []


def test_onnxruntime_web_runs_the_cloud_file_where_verify_ranked_it_first(driver, ranked):
    fetched: list[str] = []
    driver.page.on("request", lambda request: fetched.append(request.url))
    status = driver.create(CLOUD_FILE_FIRST, cloud=None)
    assert (status["backend"], status["file"]) == ("onnxruntime-web/wasm", "model.onnx"), status
    assert status["runtimeReason"].startswith("fastest verified: onnxruntime-web/wasm on model.onnx, 0.40 ms")
    assert predict_locally(driver, ranked)["runtime"] == "onnxruntime-web"
    assert not [url for url in fetched if url.endswith("/model.edge.onnx")]  # the file it does not run is not fetched
    forced = driver.create(CLOUD_FILE_FIRST, cloud=None, policy={"edgeRuntime": "onnxjs"})
    assert (forced["backend"], forced["file"]) == ("onnxjs/wasm", "model.edge.onnx")


def test_policy_edge_runtime_forces_one_and_refuses_what_is_not_verified(driver, ranked):
    status = driver.create(ORT_FIRST, cloud=None, policy={"edgeRuntime": "onnxjs/cpu"})
    assert (status["backend"], status["runtimeReason"]) == ("onnxjs/cpu", "policy.edgeRuntime forces onnxjs/cpu")
    assert predict_locally(driver, ranked)["runtime"] == "onnxjs"
    assert driver.create(ONNXJS_FIRST, cloud=None, policy={"edgeRuntime": "onnxruntime-web"})["backend"] == "onnxruntime-web/wasm"
    refused = driver.page.evaluate(
        """async (policies) => {
          const { PredictionHandler } = await import('/src/prediction-handler.js');
          const out = [];
          for (const policy of policies) {
            try { await PredictionHandler.create({ model: 'web_rank_ort', policy, update: { enabled: false } }); out.push(null); }
            catch (error) { out.push([error.code, error.message]); }
          }
          return out;
        }""",
        [{"edgeRuntime": "onnxjs/webgl"}, {"edgeRuntime": "tfjs"}],
    )
    assert refused[0] == [
        "bad-input",
        'policy.edgeRuntime "onnxjs/webgl" is not verified for web_rank_ort v1; verified: onnxruntime-web/wasm, onnxjs/wasm, onnxjs/cpu',
    ]
    assert refused[1][0] == "bad-input" and refused[1][1].startswith('policy.edgeRuntime "tfjs" is not a browser runtime')


def test_data_saver_takes_the_small_download_until_the_big_one_is_cached(fresh, ranked):
    fetched: list[str] = []
    fresh.page.on("request", lambda request: fetched.append(request.url))
    fresh.cdp.send("Emulation.setDataSaverOverride", {"dataSaverEnabled": True})
    assert fresh.page.evaluate("() => navigator.connection.saveData") is True

    status = fresh.create(ORT_FIRST, cloud=None)
    assert status["backend"] == "onnxjs/wasm", status
    assert status["runtimeReason"].startswith("data saver is on and onnxruntime-web's 14.3 MB are not cached: onnxjs/wasm")
    assert predict_locally(fresh, ranked)["runtime"] == "onnxjs"
    assert not [url for url in fetched if "/vendor/onnxruntime-web/" in url]  # not a byte of the big one

    # Once the page has loaded onnxruntime-web (forced here), its files are in the HTTP cache: data saver no longer holds it back.
    assert fresh.create(ORT_FIRST, cloud=None, policy={"edgeRuntime": "onnxruntime-web"})["backend"] == "onnxruntime-web/wasm"
    status = fresh.create(ORT_FIRST, cloud=None)
    assert status["backend"] == "onnxruntime-web/wasm", status
    assert status["runtimeReason"].endswith("data saver is on but its files are cached")
    assert predict_locally(fresh, ranked)["runtime"] == "onnxruntime-web"
    assert fresh.page.errors == []  # the cache probe logs no miss (it only asks about a runtime noted as loaded)


def test_each_runtime_fetches_exactly_the_files_verify_sizes(fresh, ranked):
    served = {}
    for runtime, name in (("onnxjs", ONNXJS_FIRST), ("onnxruntime-web", ORT_FIRST)):
        fetched: list[str] = []
        listener = lambda request: fetched.append(request.url)  # noqa: E731
        fresh.page.on("request", listener)
        assert fresh.create(name, cloud=None)["runtime"] == runtime
        fresh.page.remove_listener("request", listener)
        paths = {fresh.site.resolve(url.removeprefix(fresh.site.url)) for url in fetched}
        served[runtime] = {str(p.relative_to(node_modules())) for p in paths if p and p.is_relative_to(node_modules())}
    assert served == {runtime: set(files) for runtime, files in RUNTIME_FILES.items()}


TRAINABLE_CLOUD_FIRST = "web_rank_train"  # trainable, its own edge file, onnxruntime-web on model.onnx ranked first


def test_a_personalisation_runs_on_the_fastest_verified_file_too(page, site, mms, ranked):
    """The personalised parameters are written into the file the edge runs (here the cloud file, at its
    own `locations`), and the answer is the personalised model's."""
    from .train_fixture import make_trainable
    from .trainer_driver import TrainerDriver

    write_ranked(ranked.registry, TRAINABLE_CLOUD_FIRST, ORDERS[CLOUD_FILE_FIRST])
    make_trainable(ranked.registry / TRAINABLE_CLOUD_FIRST / "1")
    trainer = TrainerDriver(page, site, mms).open()
    status = trainer.create(TRAINABLE_CLOUD_FIRST, cloud=False)
    assert (status["backend"], status["file"]) == ("onnxruntime-web/wasm", "model.onnx"), status
    x = np.random.default_rng(3).standard_normal((12, 64)).astype(np.float32)
    result = trainer.personalize(x, x[:, :8] * 0.5, epochs=2, batchSize=6, learningRate=0.05)
    assert "error" not in result and result["personalized"], result
    got = trainer.parameters()
    probe = np.random.default_rng(4).standard_normal((2, 64)).astype(np.float32)
    edge = trainer.predict(probe, "local-only")
    assert (edge["personalized"], edge["runtime"]) == (True, "onnxruntime-web"), edge
    assert trainer.page.evaluate("() => window.handler.status().edge.file") == "model.onnx"
    forecast = np.asarray(edge["outputs"]["forecast"]["data"], np.float32).reshape(2, 8)
    np.testing.assert_allclose(forecast, probe @ got["W"] + got["b"], atol=1e-5)
    assert trainer.page.errors == []
