"""Hyperparameter search with KerasTuner, under a trial count and a time budget.

KerasTuner proposes the hyperparameters (random search or Bayesian optimisation); our
`run_trial` trains the template's model and scores it by validation MAE in the signal's own
units, the same measure the baselines get. The search stops between trials: when the trial
count is reached, or when the next trial would be expected to end past the time budget.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import numpy as np

from .data import Dataset
from .templates import Template

TUNERS = ("random", "bayesian")
OBJECTIVE = "val_mae"


@dataclass
class TrialRecord:
    number: int
    hyperparameters: dict[str, Any]
    val_mae: float | None  # None when the trial failed
    seconds: float
    status: str  # "COMPLETED" or "FAILED"
    error: str | None = None


@dataclass
class SearchResult:
    trials: list[TrialRecord]
    best_model: Any  # keras.Model trained on normalised windows
    best_trial: TrialRecord
    stopped_by: str  # "trials" or "time"
    seconds: float


@dataclass
class SearchSettings:
    trials: int
    max_seconds: float
    epochs: int
    batch_size: int = 64
    seed: int = 0
    tuner: str = "random"


def format_hyperparameters(values: dict[str, Any]) -> str:
    return " ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}" for key, value in values.items())


@dataclass
class TrialBudget:
    """Trial count and seconds; also the per-trial records and the best model so far."""

    settings: SearchSettings
    progress: Callable[[str], None]
    started: float = field(default_factory=time.monotonic)
    records: list[TrialRecord] = field(default_factory=list)
    trial_started: float = 0.0
    trial_mae: float | None = None
    best_model: Any = None
    best_mae: float = float("inf")
    stopped_by: str = "trials"

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def out_of_time(self) -> bool:
        """True when one more trial of the mean length so far would end past the budget."""
        durations = [record.seconds for record in self.records]
        expected = sum(durations) / len(durations) if durations else 0.0
        return self.elapsed() + expected > self.settings.max_seconds


def _budgeted(base: type) -> type:
    """A KerasTuner tuner class with our run_trial, progress lines and time budget."""

    class Budgeted(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, budget: TrialBudget, data: Dataset, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.budget = budget
            norm = data.normalisation
            self.x_train, self.y_train = norm.apply(data.x_train), norm.apply(data.y_train)
            self.x_val, self.y_val = norm.apply(data.x_val), norm.apply(data.y_val)
            self.scale = norm.std

        def on_trial_begin(self, trial: Any) -> None:
            super().on_trial_begin(trial)
            self.budget.trial_started, self.budget.trial_mae = time.monotonic(), None

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            settings = self.budget.settings
            model = self.hypermodel.build(trial.hyperparameters)
            model.fit(self.x_train, self.y_train, epochs=settings.epochs, batch_size=settings.batch_size, verbose=0)
            forecast = model.predict(self.x_val, batch_size=512, verbose=0)
            mae = float(np.mean(np.abs(forecast - self.y_val)) * self.scale)
            self.budget.trial_mae = mae
            if np.isfinite(mae) and mae < self.budget.best_mae:
                self.budget.best_mae, self.budget.best_model = mae, model
            return {OBJECTIVE: mae}

        def on_trial_end(self, trial: Any) -> None:
            budget, settings = self.budget, self.budget.settings
            seconds = time.monotonic() - budget.trial_started
            mae = budget.trial_mae
            completed = trial.status == "COMPLETED" and mae is not None and bool(np.isfinite(mae))
            record = TrialRecord(
                number=len(budget.records) + 1,
                hyperparameters=dict(trial.hyperparameters.values),
                val_mae=mae if completed else None,
                seconds=round(seconds, 2),
                status="COMPLETED" if completed else "FAILED",
                error=None if completed else (trial.message or "no finite validation error").strip().splitlines()[-1],
            )
            budget.records.append(record)
            outcome = f"val MAE {record.val_mae:.4f}" if completed else f"FAILED: {record.error}"
            budget.progress(
                f"trial {record.number}/{settings.trials}  {format_hyperparameters(record.hyperparameters)}  "
                f"{outcome}  ({seconds:.1f} s, total {budget.elapsed():.1f} s)"
            )
            super().on_trial_end(trial)
            if record.number < settings.trials and budget.out_of_time():
                budget.stopped_by = "time"
                budget.progress(
                    f"stopping after {record.number} trial(s): one more would be expected to end "
                    f"past the budget of {settings.max_seconds:g} s"
                )
                self.oracle.max_trials = len(self.oracle.trials)

    return Budgeted


def run_search(
    template: Template,
    data: Dataset,
    settings: SearchSettings,
    progress: Callable[[str], None] = lambda message: None,
) -> SearchResult:
    """Search the template's hyperparameters; raises RuntimeError if no trial succeeds."""
    import keras
    import keras_tuner

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # per-trial retracing warnings are expected
    keras.utils.set_random_seed(settings.seed)
    base = keras_tuner.RandomSearch if settings.tuner == "random" else keras_tuner.BayesianOptimization
    budget = TrialBudget(settings, progress)
    build = partial(template.build, window=data.spec.window, horizon=data.spec.horizon)
    # KerasTuner prints the full traceback of every failed trial while its DEBUG flag (default True,
    # no public setter) is on; our progress line names the error in one line instead.
    from keras_tuner.src import config as tuner_config

    debug, tuner_config.DEBUG = tuner_config.DEBUG, False
    with tempfile.TemporaryDirectory(prefix="edgecloud-search-") as workdir:
        tuner = _budgeted(base)(
            hypermodel=build,
            objective=keras_tuner.Objective(OBJECTIVE, direction="min"),
            max_trials=settings.trials,
            seed=settings.seed,
            directory=workdir,
            project_name="search",
            overwrite=True,
            budget=budget,
            data=data,
        )
        try:
            tuner.search(verbose=0)
        finally:
            tuner_config.DEBUG = debug
    completed = [record for record in budget.records if record.status == "COMPLETED"]
    if not completed or budget.best_model is None:
        reasons = "; ".join(sorted({record.error or "" for record in budget.records}))
        raise RuntimeError(f"no trial finished with a finite validation error ({reasons})")
    best = min(completed, key=lambda record: record.val_mae)
    return SearchResult(budget.records, budget.best_model, best, budget.stopped_by, round(budget.elapsed(), 2))
