"""The browser zoo: every model exported with `edgecloud export` (lowering on), then run in
Chromium on ONNX.js (cpu, wasm) and onnxruntime-web against onnxruntime in Python.

Prints and asserts the fraction that runs on ONNX.js after lowering (target >= 90 %); every
model must run on onnxruntime-web. To add another framework's models, add builders to `ZOO`:
a name → callable writing a saved model file and returning (path, sample .npy path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from edgecloud.cli import main as cli
from edgecloud.edge_verify import verify_version

from .keras_zoo import KERAS_ZOO

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


# The hook for the other converters: add e.g. {"torch_mlp": save_torch_mlp, ...} here.
ZOO: dict[str, SavedModel] = {name: _keras_entry(builder) for name, builder in KERAS_ZOO.items()}
ONNXJS_BACKENDS = ("cpu", "wasm")
RESULTS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def zoo_registry(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zoo-registry")


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_runs_in_chromium(name, zoo_registry, tmp_path, browser_context):
    model_path, sample_path = ZOO[name](tmp_path)
    assert cli(["export", str(model_path), "--sample", str(sample_path), "--name", name, "--out", str(zoo_registry)]) == 0
    report = verify_version(zoo_registry / name / "1", random_inputs=2, repeats=3, context=browser_context)
    rows = {(row["runtime"], row["backend"]): row for row in report.rows}
    RESULTS[name] = rows
    assert report.failures == [], report.failures  # nothing that runs may differ by > 1e-4
    assert rows[("onnxruntime-web", "wasm")]["passed"], rows[("onnxruntime-web", "wasm")]


def test_zoo_fraction_on_onnxjs():
    assert set(RESULTS) == set(ZOO), "run the whole zoo module: the fraction needs every model"
    on_onnxjs = sorted(name for name, rows in RESULTS.items() if all(rows[("onnxjs", b)]["passed"] for b in ONNXJS_BACKENDS))
    fraction = len(on_onnxjs) / len(RESULTS)
    print(f"\nzoo: {len(on_onnxjs)}/{len(RESULTS)} = {fraction:.0%} run on ONNX.js (cpu+wasm) after lowering; "
          f"not: {sorted(set(RESULTS) - set(on_onnxjs))}")  # fmt: skip
    assert fraction >= 0.9
    assert all(rows[("onnxruntime-web", "wasm")]["passed"] for rows in RESULTS.values())
