"""One build: simulate the data, search the template, judge the best model against the baselines, save.

Writes into OUT: `model.keras` (takes the raw signal [batch, T, 1] in mV and returns the next
H samples in mV: the normalisation is inside the model), `sample.npy` (one validation window,
[1, T, 1]), `report.json` and `report.md`.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import CliError, CommandFailed
from . import baselines, templates
from .data import Dataset, DataSpec, Normalisation, make_dataset
from .report import write_report
from .search import SearchResult, SearchSettings, run_search
from .templates import Template

MODEL_FILE = "model.keras"
SAMPLE_FILE = "sample.npy"


class BuildFailure(CommandFailed):
    """The search ran but produced nothing usable (exit code 1)."""


@dataclass
class BuildSettings:
    template: str
    search: SearchSettings
    data: DataSpec

    def as_json(self) -> dict[str, Any]:
        return {"template": self.template, "search": asdict(self.search), "data": asdict(self.data)}


@dataclass
class BuildResult:
    out: Path
    model_path: Path
    sample_path: Path
    report: dict[str, Any]

    @property
    def beats_baselines(self) -> bool:
        return bool(self.report["beats_baselines"])


def baseline_scores(data: Dataset) -> dict[str, dict[str, Any]]:
    horizon = data.spec.horizon
    min_lag, max_lag = data.spec.beat_lags()
    return {
        "last_value": {"val_mae": baselines.mean_absolute_error(baselines.last_value(data.x_val, horizon), data.y_val)},
        "repeat_previous_beat": {
            "val_mae": baselines.mean_absolute_error(baselines.repeat_previous_beat(data.x_val, horizon, min_lag, max_lag), data.y_val),
            "beat_period_search_samples": [min_lag, max_lag],
        },
    }


def deployable(trained: Any, normalisation: Normalisation, spec: DataSpec) -> Any:
    """The trained model wrapped to take and return the raw signal, so no caller has to normalise.

    When the template ends in a Dense layer (the built-in one does), the output's de-normalisation
    `y * std + mean` is folded into that layer's kernel and bias, so the saved model still ends in
    a Dense layer: what `export --trainable head` fine-tunes by default (docs/training.md).
    """
    import keras

    mean, std = normalisation.mean, normalisation.std
    inputs = keras.Input((spec.window, 1), name="window")
    scaled = keras.layers.Rescaling(1 / std, offset=-mean / std, name="normalise")(inputs)
    last = trained.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.activation is not keras.activations.linear:
        forecast = keras.layers.Rescaling(std, offset=mean, name="forecast")(trained(scaled))
        return keras.Model(inputs, forecast, name="ecg_forecast")
    body = keras.Model(trained.inputs, last.input, name=trained.name)
    head = keras.layers.Dense(last.units, name="forecast")
    forecast = head(body(scaled))
    kernel, bias = last.get_weights()
    head.set_weights([kernel * std, bias * std + mean])
    return keras.Model(inputs, forecast, name="ecg_forecast")


def verdict(best_mae: float, scores: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    worse = [name for name, score in scores.items() if not best_mae < score["val_mae"]]
    if not worse:
        return True, f"The model beats both baselines (val MAE {best_mae:.4f} mV)."
    names = " and ".join(name.replace("_", "-") for name in worse)
    return False, f"The model does NOT beat the {names} baseline (val MAE {best_mae:.4f} mV): do not serve it as is."


def _report(
    template: Template,
    settings: BuildSettings,
    data: Dataset,
    search: SearchResult,
    model: Any,
    scores: dict[str, dict[str, Any]],
    started: float,
) -> dict[str, Any]:
    import keras

    best_mae = baselines.mean_absolute_error(model.predict(data.x_val, batch_size=512, verbose=0), data.y_val)
    beats, judgement = verdict(best_mae, scores)
    return {
        "schema": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "template": {"name": template.name, "origin": template.origin},
        "settings": settings.as_json(),
        "keras_version": keras.__version__,
        "data": data.describe(),
        "trials": [asdict(record) for record in search.trials],
        "stopped_by": search.stopped_by,
        "best": {
            "trial": search.best_trial.number,
            "hyperparameters": search.best_trial.hyperparameters,
            "val_mae": best_mae,  # measured again on the saved model (raw signal in, mV out)
            "parameters": int(model.count_params()),
            "layers": sorted({type(layer).__name__ for layer in _all_layers(model)}),
        },
        "baselines": scores,
        "beats_baselines": beats,
        "verdict": judgement,
        "files": {"model": MODEL_FILE, "sample": SAMPLE_FILE},
        "search_seconds": search.seconds,
        "seconds": round(time.monotonic() - started, 2),
    }


def _all_layers(model: Any) -> list[Any]:
    layers = []
    for layer in model.layers:
        layers.extend(_all_layers(layer) if hasattr(layer, "layers") else [layer])
    return layers


def build(settings: BuildSettings, out: Path, progress: Callable[[str], None] = lambda message: None) -> BuildResult:
    """Run one build into `out`; raises CliError (2) on bad settings, BuildFailure (1) when nothing trains."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started = time.monotonic()
    try:
        settings.data.check()
    except ValueError as error:
        raise CliError(str(error)) from None
    template = templates.resolve(settings.template)
    templates.check(template, window=settings.data.window, horizon=settings.data.horizon)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} exists and is not a folder")

    progress(f"simulating {settings.data.people} people with neurokit2 (split by person)")
    data = make_dataset(settings.data)
    progress(f"{len(data.x_train)} training and {len(data.x_val)} validation windows of {data.spec.window} samples")
    try:
        search = run_search(template, data, settings.search, progress)
    except RuntimeError as error:
        raise BuildFailure(f"the search failed: {str(error).strip().splitlines()[0]}") from None
    scores = baseline_scores(data)
    model = deployable(search.best_model, data.normalisation, data.spec)

    out.mkdir(parents=True, exist_ok=True)
    model_path, sample_path = out / MODEL_FILE, out / SAMPLE_FILE
    model.save(model_path)
    np.save(sample_path, data.x_val[:1])
    report = _report(template, settings, data, search, model, scores, started)
    write_report(out, report)
    return BuildResult(out, model_path, sample_path, report)
