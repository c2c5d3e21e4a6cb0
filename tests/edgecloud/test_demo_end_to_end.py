"""The project's main job as a newcomer sees it, on a tiny build: `edgecloud demo`'s own
`prepare()` (build → export with browser lowering → archive) → the real stack (MMS + the page) →
Chromium opens /demo/. The Conv1D + LSTM forecaster must be lowered for ONNX.js; `edgecloud verify`
must pass it on every ONNX.js backend and rank the runtimes; the page must run it on the edge (not the
cloud) on the fastest verified runtime, on the ECG strip prepare() writes, the cloud must answer too,
and both must agree. The page's screenshot lands in tests/edgecloud/artifacts/demo-end-to-end.png.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from edgecloud.stack import Stack, StackOptions
from mms_handlers.server import ServerConfig

from ..conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.keras]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parent / "artifacts"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def demo_version(workdir: Path) -> tuple[Path, Path, Path]:
    """(registry, model_store, version folder) of the demo pipeline on a one-trial, one-epoch build."""
    from benchmarks.models import prepare_small_demo
    from edgecloud.commands.demo import DEMO_NAME

    registry, model_store = prepare_small_demo(workdir / "demo-e2e")
    return registry, model_store, registry / DEMO_NAME / "1"


def manifest(version: Path) -> dict:
    return json.loads((version / "model.json").read_text())


def test_the_forecaster_is_lowered_for_onnxjs(demo_version):
    _, _, version = demo_version
    edge = manifest(version)["edge"]
    assert edge["runtime"] == "onnxjs" and edge["lowered"] is True, edge
    applied = [record["name"] for record in edge["passes"] if record["applied"]]
    assert {"unroll-recurrent", "slice-of-concat", "opset-down"} <= set(applied), edge["passes"]
    assert edge["blockers"] == {"cpu": [], "wasm": [], "webgl": []}
    lowered = onnx.load(version / edge["file"])
    ops = {node.op_type for node in lowered.graph.node}
    assert "LSTM" not in ops and "Concat" not in ops, ops  # unrolled; no 62-way stack for webgl
    # Keras writes Conv1D / MaxPool1D as 2-D ops over an added height axis (what conv1d-to-2d does for torch).
    for node in lowered.graph.node:
        if node.op_type in ("Conv", "MaxPool"):
            kernel = next(a.ints for a in node.attribute if a.name == "kernel_shape")
            assert len(kernel) == 2 and kernel[0] == 1, node


def test_edgecloud_verify_passes_every_onnxjs_backend(demo_version):
    _, _, version = demo_version
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "edgecloud", "verify", str(version), "--random", "0", "--repeats", "1"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    training = manifest(version)["training"]["edge"]["verified"]
    step_rows = {(row["runtime"], row["backend"]): row for row in training["results"]}
    # The training step is held to the same bar and recorded, so the page trains only where it passed.
    # ONNX.js cpu computes this step wrong (4.7e-3 seen, root cause not found: docs/limits.md); the
    # exit code must then say so, and wasm and onnxruntime-web must still pass.
    assert step_rows[("onnxjs", "wasm")]["passed"] and step_rows[("onnxruntime-web", "wasm")]["passed"], step_rows
    step_failures = [key for key, row in step_rows.items() if not row["passed"]]
    assert result.returncode == (1 if step_failures else 0), result.stdout + result.stderr
    assert all(f"training step: {runtime}/{backend} differs" in result.stderr for runtime, backend in step_failures)
    verified = manifest(version)["edge"]["verified"]
    assert verified["file"] == "model.edge.onnx" and verified["passed"] is True
    onnxjs = {row["backend"]: row for row in verified["results"] if row["runtime"] == "onnxjs"}
    assert set(onnxjs) == {"cpu", "wasm", "webgl"}
    for backend, row in onnxjs.items():
        assert row["loads"] and row["runs"], (backend, row)
        assert row["max_abs_diff"] <= TOLERANCE, (backend, row)


@pytest.fixture
def demo_stack(demo_version):
    registry, model_store, _ = demo_version
    server = ServerConfig(model_store=model_store, inference_port=free_port(), management_port=free_port())
    options = StackOptions(server=server, registry=registry, web_port=free_port())
    stack = Stack(options).start()
    yield stack
    stack.stop()


def side(page, name: str, field: str) -> str:
    return page.inner_text(f'td[data-side="{name}"][data-field="{field}"]')


def test_the_demo_page_runs_the_forecaster_on_its_fastest_verified_runtime_and_the_cloud_agrees(page, demo_stack, demo_version):
    page.set_viewport_size({"width": 1100, "height": 1250})
    page.goto(demo_stack.urls()["page"])
    page.wait_for_selector("body[data-ready]", timeout=120_000)
    assert page.get_attribute("body", "data-ready") == "true", page.inner_text("#status")
    assert page.inner_text("#model-name") == "forecaster" and page.inner_text("#model-version") == "1"
    assert page.inner_text("#ran-on") == "edge" and page.inner_text("#fallback") == "none"
    ranking = manifest(demo_version[2])["edge"].get("ranking")  # the verify test above wrote it
    fastest = f"{ranking[0]['runtime']}/{ranking[0]['backend']}" if ranking else "onnxjs/"
    assert page.inner_text("#backend").startswith(fastest), (page.inner_text("#backend"), ranking)
    assert page.inner_text("#runtime-reason").startswith("fastest verified" if ranking else "no browser ranking")
    assert page.inner_text("#answer-version") == "1"
    # The page streams the validation person's ECG that prepare() wrote, not its built-in pulse train.
    assert page.inner_text("#signal-source").startswith("neurokit2 ecg_simulate, validation person")
    assert side(page, "edge", "where").startswith(f"edge · {fastest}")
    assert side(page, "cloud", "where") == "cloud · mms/onnxruntime"
    edge_values = [float(v) for v in side(page, "edge", "values").split(",")]
    cloud_values = [float(v) for v in side(page, "cloud", "values").split(",")]
    assert len(edge_values) == len(cloud_values) == 4
    assert float(page.inner_text("#diff")) <= TOLERANCE
    assert float(side(page, "edge", "latency")) > 0 and float(side(page, "cloud", "latency")) > 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-end-to-end.png"), full_page=True)
    assert page.errors == []
