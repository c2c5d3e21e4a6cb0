"""`edgecloud verify` on a trainable model: the training step runs in Chromium on ONNX.js (cpu,
wasm) and onnxruntime-web against onnxruntime in Python, printed in its own table and recorded
in model.json `training.edge.verified`; a browser step that computes differently fails.

The step graph here is the browser tests' plumbing fixture (tests/web/train_fixture.py).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgecloud.train_verify import verify_training
from export.manifest import file_entry, read_manifest, write_manifest
from export.pipeline import SAMPLE_FILE, sample_json
from tests.web.registry_models import fitted_forecaster, write_version
from tests.web.train_fixture import make_trainable

from .test_verify import verify

pytestmark = [pytest.mark.integration]


def trainable_version(registry, name):
    """The fixture forecaster with its sample.json (verify runs the inference file on it too) and train.onnx."""
    folder = write_version(registry, name, "1", fitted_forecaster()[0])
    sample = {"window": np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)}
    (folder / SAMPLE_FILE).write_text(json.dumps(sample_json(sample)))
    manifest = read_manifest(folder)
    manifest["files"][SAMPLE_FILE] = file_entry(folder / SAMPLE_FILE)
    write_manifest(folder, manifest)
    make_trainable(folder)
    return folder


def test_verify_runs_the_training_step_in_the_browser_and_records_it(tmp_path):
    folder = trainable_version(tmp_path, "trainable")
    result = verify(str(folder), "--random", "0", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    assert "training step (loss, new parameters, new optimizer state), 1 steps compared:" in result.stdout
    verified = read_manifest(folder)["training"]["edge"]["verified"]
    assert verified["passed"] and verified["file"] == "train.onnx" and verified["inputs_compared"] == 1
    rows = {(row["runtime"], row["backend"]): row for row in verified["results"]}
    assert set(rows) == {("onnxjs", "cpu"), ("onnxjs", "wasm"), ("onnxruntime-web", "wasm")}
    assert all(row["passed"] and row["max_abs_diff"] <= 1e-5 for row in rows.values())
    ranking = read_manifest(folder)["training"]["edge"]["ranking"]  # what the page's trainer runs first
    assert sorted((r["runtime"], r["backend"]) for r in ranking) == sorted(rows)
    assert [r["median_ms"] for r in ranking] == sorted(rows[(r["runtime"], r["backend"])]["median_ms"] for r in ranking)


def test_verify_fails_when_the_browser_step_differs_from_train_onnx(registry, site, browser_context):
    folder = trainable_version(registry, "verify_trainable_bad")
    # A browser file whose momentum constant is off: every runtime runs it, none may pass.
    step = onnx.load(folder / "train.onnx")
    momentum = next(i for i in step.graph.initializer if i.name == "momentum")
    momentum.CopyFrom(numpy_helper.from_array(np.array([0.5], np.float32), "momentum"))
    onnx.save(step, folder / "train.edge.onnx")
    manifest = read_manifest(folder)
    manifest["files"]["train.edge.onnx"] = file_entry(folder / "train.edge.onnx")
    manifest["training"]["edge"]["file"] = "train.edge.onnx"
    write_manifest(folder, manifest)
    report = verify_training(folder, random_inputs=1, repeats=1, context=browser_context, site=site)
    assert not report.passed
    assert any(f.startswith("onnxjs/cpu differs by") for f in report.failures), report.failures
    assert all(row["runs"] and not row["passed"] and row["max_abs_diff"] > 1e-3 for row in report.rows)
    verified = json.loads((folder / "model.json").read_text())["training"]["edge"]["verified"]
    assert verified["passed"] is False and verified["file"] == "train.edge.onnx"
