"""`edgecloud build`: the Prediction Builder — template + hyperparameter search → trained model + report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CliError, CommandFailed

if TYPE_CHECKING:
    from ..builder.build import BuildSettings


def add_build_options(parser: argparse.ArgumentParser, *, trials: int, epochs: int, max_seconds: float) -> None:
    """Search and data options shared by `build` and `demo` (defaults differ per command)."""
    from ..builder.data import DataSpec
    from ..builder.search import TUNERS

    spec = DataSpec()
    search = parser.add_argument_group("search")
    search.add_argument(
        "--template", default="ecg-forecaster", help="built-in or entry-point name, or module.path:function (default ecg-forecaster)"
    )
    search.add_argument("--trials", type=int, default=trials, help=f"most trials to run (default {trials})")
    budget_help = f"time budget in seconds: no trial starts that would be expected to end past it (default {max_seconds:g})"
    search.add_argument("--max-seconds", type=float, default=max_seconds, help=budget_help)
    search.add_argument("--epochs", type=int, default=epochs, help=f"training epochs per trial (default {epochs})")
    search.add_argument("--train-batch-size", type=int, default=64, help="training batch size (default 64)")
    search.add_argument("--tuner", choices=TUNERS, default="random", help="KerasTuner search (default random)")
    search.add_argument("--seed", type=int, default=spec.seed, help="seed for the data and the search (default 0)")
    data = parser.add_argument_group("data (simulated ECG, neurokit2)")
    data.add_argument("--people", type=int, default=spec.people, help=f"simulated people (default {spec.people})")
    data.add_argument(
        "--validation-people",
        type=int,
        default=spec.validation_people,
        help=f"people held out for validation (default {spec.validation_people})",
    )
    data.add_argument(
        "--seconds-per-person",
        type=int,
        default=spec.seconds_per_person,
        help=f"whole seconds of signal per person (default {spec.seconds_per_person})",
    )
    data.add_argument("--sampling-rate", type=int, default=spec.sampling_rate, help=f"Hz (default {spec.sampling_rate})")
    data.add_argument("--window-seconds", type=float, default=spec.window_seconds, help=f"input length (default {spec.window_seconds:g} s)")
    data.add_argument(
        "--horizon-seconds", type=float, default=spec.horizon_seconds, help=f"forecast length (default {spec.horizon_seconds:g} s)"
    )
    data.add_argument("--stride", type=int, default=spec.stride, help=f"samples between windows (default {spec.stride})")
    data.add_argument(
        "--morphology",
        type=float,
        default=spec.morphology,
        help="how much people's beat shape, amplitude and baseline wander differ, 0-2 "
        f"(default {spec.morphology:g}; 0: only heart rate, variability and noise)",
    )


def settings_from(args: argparse.Namespace) -> BuildSettings:
    """BuildSettings from parsed options; a bad value is a CliError naming the option."""
    from ..builder.build import BuildSettings
    from ..builder.data import DataSpec
    from ..builder.search import SearchSettings

    for option, minimum in (("trials", 1), ("epochs", 1), ("train_batch_size", 1), ("people", 2), ("seconds_per_person", 1)):
        if getattr(args, option) < minimum:
            raise CliError(f"--{option.replace('_', '-')} must be at least {minimum}, got {getattr(args, option)}")
    if not args.max_seconds > 0:
        raise CliError(f"--max-seconds must be positive, got {args.max_seconds:g}")
    return BuildSettings(
        template=args.template,
        search=SearchSettings(
            trials=args.trials,
            max_seconds=args.max_seconds,
            epochs=args.epochs,
            batch_size=args.train_batch_size,
            seed=args.seed,
            tuner=args.tuner,
        ),
        data=DataSpec(
            sampling_rate=args.sampling_rate,
            window_seconds=args.window_seconds,
            horizon_seconds=args.horizon_seconds,
            people=args.people,
            validation_people=args.validation_people,
            seconds_per_person=args.seconds_per_person,
            stride=args.stride,
            seed=args.seed,
            morphology=args.morphology,
        ),
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build",
        help="search a model template's hyperparameters on simulated ECG and save the best model",
        description=(
            "The Prediction Builder. Simulate ECG for several people (neurokit2), split them into "
            "training and validation people, run a KerasTuner search over the template's "
            "hyperparameters (one line per trial on stderr), and write OUT/model.keras, OUT/sample.npy, "
            "OUT/report.json and OUT/report.md. The best model must beat two naive forecasts "
            "(last value, repeat previous beat) on the validation people: otherwise the build exits 1 "
            "(the files are still written), unless --allow-worse."
        ),
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--allow-worse", action="store_true", help="exit 0 with a warning when the model does not beat the baselines")
    add_build_options(parser, trials=5, epochs=5, max_seconds=600)
    parser.set_defaults(run=run)


def say(message: str) -> None:
    print(f"build: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..builder.build import build

    result = build(settings_from(args), args.out, progress=say)
    report = result.report
    say(
        f"best: trial {report['best']['trial']}, val MAE {report['best']['val_mae']:.4f} mV; baselines: "
        f"last value {report['baselines']['last_value']['val_mae']:.4f}, "
        f"repeat previous beat {report['baselines']['repeat_previous_beat']['val_mae']:.4f}"
    )
    print(result.model_path)
    if result.beats_baselines:
        return 0
    if args.allow_worse:
        say(f"WARNING: {report['verdict']}")
        return 0
    raise CommandFailed(f"{report['verdict']} (files kept in {result.out}; --allow-worse to accept)")
