"""The browser zoo: every model exported with `edgecloud export` (lowering on), then run in
Chromium on ONNX.js (cpu, wasm) and onnxruntime-web against onnxruntime in Python.

Prints and asserts the fraction of models without `ai.onnx.ml` operators that run on ONNX.js
after lowering (target >= 90 %), and prints the fraction over all models (the scikit-learn ones
whose `ai.onnx.ml` operators lower count too); every model must run on onnxruntime-web. Other frameworks plug
in through `tests/export/zoo.py` (the converters' zoo: `ZOO[name].build(folder) -> (model path,
sample path)`, `.framework`, `.has_ml_ops`); its non-Keras entries are added below when present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from edgecloud.cli import main as cli
from edgecloud.edge_verify import verify_version
from export.edge.artifact import EDGE_FILE
from export.manifest import file_entry

from .keras_zoo import KERAS_ZOO
from .zoo import export_flags

pytestmark = [pytest.mark.integration, pytest.mark.keras]

SavedModel = Callable[[Path], tuple[Path, Path]]


def _keras_entry(builder) -> SavedModel:
    def save(folder: Path) -> tuple[Path, Path]:
        import keras

        keras.utils.set_random_seed(3)
        model, sample = builder()
        path = folder / "model.keras"
        model.save(path)
        np.save(folder / "sample.npy", sample)
        return path, folder / "sample.npy"

    return save


ZOO: dict[str, SavedModel] = {name: _keras_entry(builder) for name, builder in KERAS_ZOO.items()}
FRAMEWORK: dict[str, str] = dict.fromkeys(ZOO, "keras")
ML_OPS: set[str] = set()  # models with ai.onnx.ml operators: outside the fraction, inside the overall one
try:  # the hook: PyTorch, scikit-learn and MXNet models from the converters' zoo, once merged
    from .zoo import ZOO as FRAMEWORK_ZOO
except ImportError:
    FRAMEWORK_ZOO = {}
for _name, _entry in FRAMEWORK_ZOO.items():
    if _entry.framework != "keras":
        ZOO[_name], FRAMEWORK[_name] = _entry.build, _entry.framework
        if _entry.has_ml_ops:
            ML_OPS.add(_name)
ONNXJS_BACKENDS = ("cpu", "wasm")


def check_manifest_files(version_dir: Path) -> None:
    """One file for both sides, or model.onnx (cloud) + model.edge.onnx (edge), hashes right."""
    manifest = json.loads((version_dir / "model.json").read_text())
    edge = manifest["edge"]
    roles = {name: entry.get("role") for name, entry in manifest["files"].items()}
    if edge["lowered"]:
        assert edge["file"] == EDGE_FILE and roles[EDGE_FILE] == "edge" and roles["model.onnx"] == "cloud"
        assert manifest["files"][EDGE_FILE]["parity"]["source_vs_onnxruntime"]["passed"]
        assert all(record["ratio"] <= 1 for record in edge["passes"] if record["applied"])  # the criterion, docs/parity.md
    else:
        assert edge["file"] == "model.onnx" and roles["model.onnx"] == "cloud+edge"
    for name, entry in manifest["files"].items():
        assert file_entry(version_dir / name)["sha256"] == entry["sha256"], name


@pytest.fixture(scope="module")
def zoo_results(tmp_path_factory, browser_context, zoo_export) -> dict[str, dict]:
    """Every zoo model exported and verified in Chromium once, computed here rather than left behind by
    other tests, so each test below (and the fraction) can run alone. The converters' zoo models are
    the session's exports (test_zoo_export.py judges the same ones). A model whose export fails is
    recorded as such and fails its own test only."""
    registry = tmp_path_factory.mktemp("zoo-registry")
    found: dict[str, dict] = {}
    for name in sorted(ZOO):
        if name in FRAMEWORK_ZOO:
            exported, _, version_dir = zoo_export(name)
        else:
            model_path, sample_path = ZOO[name](tmp_path_factory.mktemp(name))
            exported = cli(
                [
                    "export",
                    str(model_path),
                    "--sample",
                    str(sample_path),
                    "--name",
                    name,
                    "--out",
                    str(registry),
                    "--framework",
                    FRAMEWORK[name],
                    *export_flags(FRAMEWORK[name]),
                ]
            )
            version_dir = registry / name / "1"
        if exported != 0:
            found[name] = {"exit": exported}
            continue
        report = verify_version(version_dir, random_inputs=2, repeats=3, context=browser_context, cloud_file=False)
        found[name] = {
            "exit": 0,
            "version_dir": version_dir,
            "failures": report.failures,
            "rows": {(row["runtime"], row["backend"]): row for row in report.rows},
        }
    return found


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_runs_in_chromium(name, zoo_results):
    result = zoo_results[name]
    assert result["exit"] == 0, f"edgecloud export of {name} exited {result['exit']}"
    version_dir, rows = result["version_dir"], result["rows"]
    check_manifest_files(version_dir)
    assert result["failures"] == [], result["failures"]  # nothing that runs may differ by > 1e-4
    claimed = json.loads((version_dir / "model.json").read_text())["edge"]["backends"]
    assert all(rows[("onnxjs", backend)]["passed"] for backend in claimed), (claimed, rows)  # the rules hold in Chromium
    assert rows[("onnxruntime-web", "wasm")]["passed"], rows[("onnxruntime-web", "wasm")]


def test_zoo_fraction_on_onnxjs(zoo_results):
    results = {name: result["rows"] for name, result in zoo_results.items() if result["exit"] == 0}
    assert set(results) == set(ZOO), f"not exported: {sorted(set(ZOO) - set(results))}"

    # A backend verify left out because the static check names a batch trap (ONNX.js cpu's Conv over
    # several images) does not count against the model; every other one must pass, and one at least.
    def fine(row: dict) -> bool:
        return row["passed"] or (not row["runs"] and row.get("error", "").startswith("not run: the static check"))

    on_onnxjs = {
        name
        for name, rows in results.items()
        if all(fine(rows[("onnxjs", b)]) for b in ONNXJS_BACKENDS) and any(rows[("onnxjs", b)]["passed"] for b in ONNXJS_BACKENDS)
    }
    counted = set(results) - ML_OPS  # the figure: models without ai.onnx.ml operators
    on_webgl = {name for name in on_onnxjs if results[name][("onnxjs", "webgl")]["passed"]}
    fraction = len(on_onnxjs & counted) / len(counted)
    print(
        f"\nzoo: {len(on_onnxjs & counted)}/{len(counted)} = {fraction:.0%} of the models without ai.onnx.ml ops run on "
        f"ONNX.js (cpu+wasm) after lowering; not: {sorted(counted - on_onnxjs)}; "
        f"all models: {len(on_onnxjs)}/{len(results)} = {len(on_onnxjs) / len(results):.0%} on ONNX.js "
        f"(with ai.onnx.ml: {len(on_onnxjs & ML_OPS)}/{len(ML_OPS)}), on webgl too: {len(on_webgl)}/{len(results)}; "
        f"{len(results)}/{len(results)} on onnxruntime-web"
    )
    for name, rows in sorted(results.items()):
        cells = "  ".join(
            f"{runtime}/{backend}={'ok' if row['passed'] else ('MISMATCH' if row['runs'] else 'skipped' if fine(row) else 'no')}"
            for (runtime, backend), row in rows.items()
        )
        print(f"  {name:<32} {cells}")
    assert fraction >= 0.9
    assert all(rows[("onnxruntime-web", "wasm")]["passed"] for rows in results.values())


def test_no_edge_keeps_the_export_and_names_the_blockers(tmp_path):
    model_path, sample_path = ZOO["keras_softmax_non_last_axis"](tmp_path)
    registry = tmp_path / "registry"
    assert cli(["export", str(model_path), "--sample", str(sample_path), "--name", "raw", "--out", str(registry), "--no-edge"]) == 0
    manifest = json.loads((registry / "raw" / "1" / "model.json").read_text())
    edge = manifest["edge"]
    assert edge["file"] == "model.onnx" and edge["lowered"] is False and edge["passes"] == []
    assert edge["runtime"] == "onnxruntime-web" and edge["backends"] == []
    assert any("Softmax" in reason for reason in edge["blockers"]["cpu"])
    assert set(manifest["files"]) == {"model.onnx", "sample.json"}
