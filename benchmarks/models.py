"""The models every benchmark runs: the demo model plus three small Keras "zoo" models.

The demo model comes from `edgecloud.commands.demo.prepare` (whatever model the demo ships
today); the zoo models are built here, exported with the project's own pipeline (so their
export time, size and parity are real figures) and archived into the same model store, so
one registry and one MMS serve them all.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

# Small on purpose: the whole zoo builds and exports in seconds (weights are seeded, not trained).
ZOO_NAMES = ("mlp", "cnn", "dense_big")
DEMO_NOTE = "edgecloud.commands.demo.prepare: export + archive, plus training when its cache is empty"


@dataclass
class BenchModel:
    """One exported, archived model: where its files are and what its export cost."""

    name: str
    kind: str  # "demo" or "zoo"
    version_dir: Path
    mar: Path
    export_seconds: float
    export_note: str

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.version_dir / "model.json").read_text())

    def sample(self) -> dict[str, np.ndarray]:
        """The sample recorded at export time (one row), as numpy arrays."""
        from export.pipeline import load_feeds

        return load_feeds(self.version_dir)


def prepare_demo(cache: Path) -> tuple[Path, Path]:
    """The demo model's (registry, model_store); swap this to benchmark another demo model."""
    from edgecloud.commands.demo import prepare

    return prepare(cache)


def prepare_small_demo(cache: Path) -> tuple[Path, Path]:
    """The demo pipeline on a one-trial, one-epoch build of the same template (smoke mode: seconds, not minutes)."""
    from edgecloud.builder.build import BuildSettings
    from edgecloud.builder.data import DataSpec
    from edgecloud.builder.search import SearchSettings
    from edgecloud.commands.demo import prepare

    data = DataSpec(people=3, validation_people=1, seconds_per_person=12, stride=20)
    search = SearchSettings(trials=1, epochs=1, max_seconds=60.0)
    # No browser verification here: its callers run inside a Playwright session or verify on their own.
    return prepare(cache, settings=BuildSettings(template="ecg-forecaster", search=search, data=data), verify=False)


def _build_keras(name: str):
    """A fresh (untrained, seeded) Keras model and a one-row sample for it."""
    import keras

    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    if name == "mlp":  # the "tiny MLP" of the cloud benchmark
        inputs = keras.Input((16,), name="x")
        hidden = keras.layers.Dense(32, activation="relu")(inputs)
        outputs = keras.layers.Dense(4, name="y")(hidden)
        shape = (1, 16)
    elif name == "cnn":  # Conv2D + global pooling; exports a Squeeze-13 that ONNX.js cannot run unlowered
        inputs = keras.Input((28, 28, 1), name="image")
        hidden = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
        hidden = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(hidden)
        hidden = keras.layers.GlobalAveragePooling2D()(hidden)
        outputs = keras.layers.Dense(10, name="logits")(hidden)
        shape = (1, 28, 28, 1)
    elif name == "dense_big":  # ~0.4 M parameters: where compute starts to matter
        inputs = keras.Input((256,), name="features")
        hidden = keras.layers.Dense(512, activation="relu")(inputs)
        hidden = keras.layers.Dense(512, activation="relu")(hidden)
        outputs = keras.layers.Dense(10, name="scores")(hidden)
        shape = (1, 256)
    else:
        raise ValueError(f"unknown zoo model {name!r}; choose one of {', '.join(ZOO_NAMES)}")
    return keras.Model(inputs, outputs, name=name), rng.standard_normal(shape).astype("float32")


def export_zoo_model(name: str, work: Path, registry: Path, model_store: Path) -> BenchModel:
    """Build, export (convert + check + parity) and archive one zoo model; times the export."""
    from export.pipeline import export_model
    from mms_handlers.archive import build_archive

    model, sample = _build_keras(name)
    source_dir = work / "zoo"
    source_dir.mkdir(parents=True, exist_ok=True)
    source, sample_path = source_dir / f"{name}.keras", source_dir / f"{name}-sample.npy"
    model.save(source)
    np.save(sample_path, sample)
    start = time.perf_counter()
    result = export_model(source, name=name, version="1", out=registry, sample=sample_path, force=True)
    seconds = time.perf_counter() - start
    mar = build_archive(result.version_dir, model_store)
    return BenchModel(name, "zoo", result.version_dir, mar, seconds, "edgecloud export (convert + check + parity)")


def _latest_version_dir(model_dir: Path) -> Path:
    latest = json.loads((model_dir / "latest.json").read_text())
    return model_dir / str(latest["version"])


def prepare_models(
    work: Path,
    zoo: tuple[str, ...] = ZOO_NAMES,
    demo: Callable[[Path], tuple[Path, Path]] | None = prepare_demo,
) -> tuple[Path, Path, list[BenchModel]]:
    """(registry, model_store, models) under `work`, rebuilt each run: the demo model(s) first, then the zoo.

    The demo builder keeps its own cache (`work/demo`, so a trained model is reused); its models
    are copied into one fresh registry and model store next to the zoo's, served by one MMS.
    `demo=None` leaves the demo out (a zoo-only smoke run).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    registry, model_store = work / "registry", work / "model-store"
    for folder in (registry, model_store):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    models = [] if demo is None else _demo_models(demo, work, registry, model_store)
    models += [export_zoo_model(name, work, registry, model_store) for name in zoo]
    return registry, model_store, models


def _demo_models(demo: Callable[[Path], tuple[Path, Path]], work: Path, registry: Path, model_store: Path) -> list[BenchModel]:
    start = time.perf_counter()
    demo_registry, demo_store = demo(work / "demo")
    demo_seconds = time.perf_counter() - start
    models = []
    for model_dir in sorted(p for p in Path(demo_registry).iterdir() if (p / "latest.json").exists()):
        mar = Path(demo_store) / f"{model_dir.name}.mar"
        if mar.exists():
            shutil.copytree(model_dir, registry / model_dir.name)
            shutil.copy2(mar, model_store / mar.name)
            models.append(
                BenchModel(
                    model_dir.name, "demo", _latest_version_dir(registry / model_dir.name), model_store / mar.name, demo_seconds, DEMO_NOTE
                )
            )
    if not models:
        raise RuntimeError(f"the demo builder left no archived model in {demo_registry} / {demo_store}")
    return models


def existing_models(work: Path) -> list[BenchModel]:
    """The models a previous `prepare_models(work)` left (registry + model store), without building again."""
    registry, model_store = work / "registry", work / "model-store"
    models = []
    for model_dir in sorted(p for p in registry.glob("*") if (p / "latest.json").exists()):
        mar = model_store / f"{model_dir.name}.mar"
        if mar.exists():
            kind = "zoo" if model_dir.name in ZOO_NAMES else "demo"
            models.append(BenchModel(model_dir.name, kind, _latest_version_dir(model_dir), mar, 0.0, "reused"))
    return models
