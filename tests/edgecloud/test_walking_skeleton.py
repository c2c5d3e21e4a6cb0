"""End to end with real parts: Keras → `edgecloud export` → `edgecloud archive` → real MMS → real Chromium.

The same ONNX file answers in MMS (onnxruntime) and in the browser (ONNX.js cpu and wasm), and
both agree with Keras itself within 1e-5.
"""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from edgecloud.cli import main as cli

pytestmark = [pytest.mark.integration, pytest.mark.keras]


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def served_dense(dense_keras_model, registry, model_store, mms):
    model_path, sample_path = dense_keras_model
    assert cli(["export", str(model_path), "--sample", str(sample_path), "--name", "dense", "--version", "1", "--out", str(registry)]) == 0
    assert cli(["archive", str(registry / "dense" / "1"), "--out", str(model_store)]) == 0
    mms.register("dense.mar")
    mms.wait_until_healthy()
    return model_path, registry / "dense" / "1"


def test_browser_equals_mms_equals_keras(served_dense, mms, site, page):
    import keras

    model_path, version_dir = served_dense
    manifest = json.loads((version_dir / "model.json").read_text())
    rng = np.random.default_rng(3)
    batch = rng.standard_normal((4, 8)).astype("float32")
    want = np.asarray(keras.saving.load_model(model_path)(batch))

    status, body = post(f"{mms.config.inference_url}/predictions/dense", json.dumps({"inputs": {"x": batch.tolist()}}).encode())
    assert status == 200, body
    cloud = np.asarray(body["outputs"]["y"], dtype=np.float32)
    assert np.max(np.abs(cloud - want)) <= 1e-5

    page.goto(f"{site.url}/harness/index.html")
    page.wait_for_function("window.harnessReady === true")
    feeds = {"x": {"dtype": "float32", "shape": [4, 8], "data": batch.reshape(-1).tolist()}}
    for backend in ("cpu", "wasm"):
        result = page.evaluate(
            "(args) => window.harness.runOnnxjs(args)",
            {"modelUrl": f"/models/dense/1/{manifest['edge']['file']}", "backend": backend, "feeds": feeds, "inputNames": ["x"]},
        )
        assert "error" not in result, result
        edge = np.asarray(result["outputs"]["y"]["data"], dtype=np.float32).reshape(4, 3)
        assert np.max(np.abs(edge - want)) <= 1e-5, backend
        assert np.max(np.abs(edge - cloud)) <= 1e-5, backend
    result = page.evaluate(
        "(args) => window.harness.runOrtWeb(args)", {"modelUrl": f"/models/dense/1/{manifest['edge']['file']}", "feeds": feeds}
    )
    assert "error" not in result, result
    edge = np.asarray(result["outputs"]["y"]["data"], dtype=np.float32).reshape(4, 3)
    assert np.max(np.abs(edge - want)) <= 1e-5, "onnxruntime-web"
    assert page.errors == []


def test_mms_matches_onnxruntime_in_process(served_dense, mms):
    import onnxruntime

    _, version_dir = served_dense
    session = onnxruntime.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(4).standard_normal((2, 8)).astype("float32")
    (want,) = session.run(None, {"x": batch})
    status, body = post(f"{mms.config.inference_url}/predictions/dense", json.dumps({"inputs": {"x": batch.tolist()}}).encode())
    assert status == 200
    assert np.max(np.abs(np.asarray(body["outputs"]["y"]) - want)) <= 1e-6


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "invalid JSON"),
        (json.dumps({"inputs": {"x": [[0.0] * 7]}}).encode(), "expected float32[?, 8], got shape [1, 7]"),
        (json.dumps({"inputs": {"z": [[0.0] * 8]}}).encode(), "missing input 'x'"),
        (json.dumps({"inputs": {"x": [[0.0] * 8], "z": [1]}}).encode(), "unexpected input 'z'"),
        (json.dumps({"inputs": {"x": [["a"] * 8]}}).encode(), "got text"),
        (json.dumps({"inputs": {"x": [[0.0] * 8, [0.0]]}}).encode(), "ragged"),
        (json.dumps({"wrong": 1}).encode(), 'expected a JSON object {"inputs"'),
        (b"", "empty request body"),
    ],
)
def test_bad_requests_get_a_named_400_and_the_worker_lives(served_dense, mms, body, fragment):
    status, answer = post(f"{mms.config.inference_url}/predictions/dense", body)
    assert status == 400
    assert fragment in answer["message"]
    assert mms.ping() == "Healthy"
    ok, _ = post(f"{mms.config.inference_url}/predictions/dense", json.dumps([[0.5] * 8]).encode())
    assert ok == 200


def test_model_json_contract(served_dense):
    _, version_dir = served_dense
    manifest = json.loads((version_dir / "model.json").read_text())
    assert manifest["inputs"] == [{"name": "x", "dtype": "float32", "shape": [None, 8]}]
    assert manifest["outputs"] == [{"name": "y", "dtype": "float32", "shape": [None, 3]}]
    assert manifest["opset"] == 13
    assert manifest["source"]["framework"] == "keras" and manifest["source"]["framework_version"]
    entry = manifest["files"]["model.onnx"]
    import hashlib

    data = (version_dir / "model.onnx").read_bytes()
    assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "role": "cloud+edge"}
    parity = manifest["parity"]["source_vs_onnxruntime"]
    assert parity["inputs_compared"] >= 33 and parity["max_abs_diff"] <= 1e-5 and parity["passed"]
    latest = json.loads((version_dir.parent / "latest.json").read_text())
    assert latest["version"] == "1"
