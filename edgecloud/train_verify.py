"""`edgecloud verify`, training part: the step graph the browser runs (model.json `training.edge.file`)
on ONNX.js (cpu, wasm) and onnxruntime-web in Chromium, against onnxruntime in Python running
`training.file` on the same feeds: loss, new parameters and new optimizer state must all agree.
The table is recorded in `training.edge.verified` (the shape of `edge.verified`).

The feeds are what a browser step sees: data rows drawn like the recorded sample (token ids
uniformly from the vocabulary model.json's `range` names), targets, an example_weight with padded
(zero) rows, the optimizer's learning rate, the model's own parameter values and optimizer state
(the init first, then small positive values as after some steps).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import numpy_helper

from export.manifest import read_manifest, write_manifest
from export.parity import Criterion, as_criterion
from export.pipeline import load_feeds
from export.verify import onnxruntime_runner

from .browser import HarnessBrowser
from .edge_verify import DEFAULT_TOLERANCE, VerifyReport, check_files, recorded, result_row

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

    from .webserver import StaticSite

TRAIN_TARGETS = [("onnxjs", "cpu"), ("onnxjs", "wasm"), ("onnxruntime-web", "wasm")]
_DTYPES = {"float32": np.float32, "float64": np.float64, "int32": np.int32, "int64": np.int64}


def _initializers(path: Path, names: set[str]) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name in names}


def step_feeds(version_dir: Path, manifest: dict[str, Any], count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`count` feed sets for one optimizer step each (see the module docstring)."""
    training = manifest["training"]
    rng = np.random.default_rng(seed)
    batch = training["batch_size"]
    try:
        sample = load_feeds(version_dir)
    except Exception:  # noqa: BLE001 - no recorded sample: standard normal data
        sample = {}
    names = {p["name"] for p in training["parameters"]}
    values = _initializers(version_dir / manifest["cloud"]["file"], names)
    missing = names - values.keys()
    if missing:
        raise ValueError(f"model.json names trainable parameters not in {manifest['cloud']['file']}: {sorted(missing)}")
    sets = []
    for k in range(count):
        feeds: dict[str, np.ndarray] = {}
        for spec in training["inputs"]["data"]:
            like = sample.get(spec["name"])
            if "range" in spec:  # token ids: inside the vocabulary, as the page checks
                feeds[spec["input"]] = rng.integers(spec["range"][0], spec["range"][1], spec["shape"], endpoint=True).astype(
                    _DTYPES[spec["dtype"]]
                )
                continue
            mean, std = (float(np.mean(like)), float(np.std(like)) or 1.0) if like is not None else (0.0, 1.0)
            feeds[spec["input"]] = rng.normal(mean, std, spec["shape"]).astype(_DTYPES[spec["dtype"]])
        for spec in training["inputs"]["targets"]:
            shape = spec["shape"]
            if spec.get("encoding") == "one-hot":
                target = np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], shape[:-1])]
            else:
                target = rng.normal(0.0, 1.0, shape).astype(np.float32)
            feeds[spec["input"]] = target
        weight = np.ones(batch, np.float32)
        weight[max(1, batch - batch // 4 - k) :] = 0  # some padded rows, a different number each time
        feeds[training["inputs"]["example_weight"]] = weight
        feeds[training["inputs"]["learning_rate"]] = np.array([training["optimizer"]["learning_rate"]], np.float32)
        if training["inputs"].get("step"):
            feeds[training["inputs"]["step"]] = np.array([k + 1], np.float32)
        for p in training["parameters"]:
            feeds[p["input"]] = values[p["name"]].astype(np.float32)
        for s in training["state"]:
            init = np.full(s["shape"], s.get("init", 0.0), np.float32)
            feeds[s["input"]] = init if k == 0 else init + np.abs(rng.normal(0, 0.01, s["shape"])).astype(np.float32)
        sets.append(feeds)
    return sets


def verify_training(
    version_dir: Path,
    *,
    tolerance: Criterion | float = DEFAULT_TOLERANCE,
    random_inputs: int = 3,
    repeats: int = 10,
    context: BrowserContext | None = None,
    site: StaticSite | None = None,
    record: bool = True,
) -> VerifyReport | None:
    """Run the browser step graph on every training target; None when the model has no `training`."""
    version_dir = Path(version_dir)
    manifest = read_manifest(version_dir)
    training = manifest.get("training")
    if not training:
        return None
    check_files(version_dir, manifest)
    edge = training.get("edge") or {"file": training["file"], "runtime": "onnxruntime-web"}
    feeds = step_feeds(version_dir, manifest, max(1, random_inputs + 1))
    reference = onnxruntime_runner(str(version_dir / training["file"]))
    expected = [reference(f) for f in feeds]
    step_model = onnx.load(str(version_dir / edge["file"]), load_external_data=False)
    constants = {i.name for i in step_model.graph.initializer}
    names = [i.name for i in step_model.graph.input if i.name not in constants]
    url = f"/models/{manifest['name']}/{manifest['version']}/{edge['file']}"
    report = VerifyReport(tolerance=as_criterion(tolerance), inputs=len(feeds))
    with HarnessBrowser(version_dir.parent.parent, context=context, site=site) as browser:
        for runtime, backend in TRAIN_TARGETS:
            result = browser.run(runtime, backend, url, feeds, names, repeats)
            report.rows.append(result_row(runtime, backend, result, expected, tolerance))
    if record:
        training["edge"] = {**edge, **recorded(report, edge["file"], compared="loss, new parameters, new optimizer state")}
        write_manifest(version_dir, manifest)
    return report
