"""Does personalisation help? `python -m benchmarks.personalisation` (run by `make bench`).

For each validation person of the demo build (people the shared model never trained on), the
demo forecaster's training step (`train.onnx`, head only, the exporter's default) is run on the
first part of that person's recording, and the forecast MAE on the later part is measured before
(the shared model) and after (the personalised parameters written into `model.onnx`, as the
browser does). Training runs through the exporter's onnxruntime runner (`export.train.runner`),
the same graph the page runs. Writes `results/PERSONALISATION.md` and `personalisation.json`.

In the browser (`benchmarks.personalisation_browser`, headless Chromium): the training step's
time on ONNX.js (cpu, wasm) and onnxruntime-web, and one whole `handler.personalize` on the first
validation person's first part (wall time, the page's worst timer lateness meanwhile, and that
person's MAE after with the browser's parameters). `--no-browser` leaves it out, and says so.

Which layers to train (`benchmarks.trainable_sets`): the same build exported with `--trainable`
head, last:2 and all, compared on MAE (Python at `--rates`, and in Chromium), browser time per
step and per personalisation, timer lateness and the step's memory, over `--rounds` interleaved
rounds. `--sets none` leaves it out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from export.errors import BadInputError
from export.train.trainable import check_spec

from .trainable_sets import SETS, compare_sets, export_sets

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results"
# The defaults the demo page's personalise action is to use: 30 s of the person's ECG, 3 epochs
# of Adam at 0.003 on the head, shuffled, batch 32 (the step's fixed batch). Chosen on this
# benchmark: 0.01 gave -19.1 % on average, 0.003 -20.0 % (docs/training.md, "Does it help?").
# Goals of the issue for the browser: one personalisation on 30 s within 10 s, timers never late > 50 ms.
WALL_GOAL_S = 10.0
LATENESS_GOAL_MS = 50.0
FIRST_SECONDS = 30.0
EPOCHS = 3
LEARNING_RATE = 0.003
SEED = 0
# Smoke mode compares only the whole model (the new path; the head is the demo's own export above):
# each set is one more export of a minute or so.
SMOKE_SETS = ("all",)
ROUNDS = 3
# The learning rates the Python runner tries on every trainable set (the browser runs LEARNING_RATE).
RATES = (0.001, 0.003, 0.01)


@dataclass
class PersonRow:
    person: int
    heart_rate: float
    train_windows: int
    test_windows: int
    steps: int
    mae_before: float
    mae_after: float
    first_loss: float
    last_loss: float
    seconds: float

    @property
    def change_percent(self) -> float:
        return 100.0 * (self.mae_after - self.mae_before) / self.mae_before


def forecast_mae(model: bytes | str, x: np.ndarray, y: np.ndarray) -> float:
    """MAE (mV) of an inference file's forecasts on windows `x` against `y`, under onnxruntime."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    forecast = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    return float(np.mean(np.abs(forecast.astype(np.float64) - y.astype(np.float64))))


def personalise_people(
    version_dir: Path,
    report: dict[str, Any],
    first_seconds: float = FIRST_SECONDS,
    epochs: int = EPOCHS,
    learning_rate: float = LEARNING_RATE,
) -> list[PersonRow]:
    """One row per validation person of the build `report`: MAE on their later part before and after."""
    from edgecloud.builder.data import DataSpec, Person, ecg_signal, personal_parts
    from export.train.runner import personalized_model, train

    spec = DataSpec(**report["settings"]["data"])
    model_file = str(Path(version_dir) / "model.onnx")
    rows = []
    for fields in report["data"]["validation_people"]:
        person = Person(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        parts = personal_parts(ecg_signal(person, spec), spec, first_seconds)
        start = time.perf_counter()
        result = train(version_dir, parts.x_first, parts.y_first, epochs=epochs, learning_rate=learning_rate, shuffle=True, seed=SEED)
        seconds = time.perf_counter() - start
        after = forecast_mae(personalized_model(version_dir, result.parameters), parts.x_later, parts.y_later)
        rows.append(
            PersonRow(
                person.id,
                person.heart_rate,
                len(parts.x_first),
                len(parts.x_later),
                result.steps,
                forecast_mae(model_file, parts.x_later, parts.y_later),
                after,
                result.losses[0],
                result.losses[-1],
                round(seconds, 3),
            )
        )
    return rows


def summary(rows: list[PersonRow]) -> dict[str, Any]:
    before = float(np.mean([r.mae_before for r in rows]))
    after = float(np.mean([r.mae_after for r in rows]))
    return {
        "mae_before": before,
        "mae_after": after,
        "change_percent": 100.0 * (after - before) / before,
        "lower_for_everyone": all(r.mae_after < r.mae_before for r in rows),
        "goal": "lower on every validation person and >= 10 % lower on average",
        "goal_met": all(r.mae_after < r.mae_before for r in rows) and after <= 0.9 * before,
    }


def browser_figures(version_dir: Path, report: dict[str, Any], first_seconds: float, epochs: int, learning_rate: float) -> dict[str, Any]:
    """Step times per browser runtime, and one personalisation of the first validation person in
    Chromium per run of `PERSONALISE_RUNS` with that person's MAE after from the browser's parameters."""
    from edgecloud.builder.data import DataSpec, Person, ecg_signal, personal_parts
    from export.train.runner import personalized_model

    from .personalisation_browser import personalise_in_browser, step_times

    spec = DataSpec(**report["settings"]["data"])
    fields = report["data"]["validation_people"][0]
    person = Person(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    parts = personal_parts(ecg_signal(person, spec), spec, first_seconds)
    version_dir = Path(version_dir)
    manifest = json.loads((version_dir / "model.json").read_text())
    runs = personalise_in_browser(
        version_dir.parent.parent,
        version_dir.parent.name,
        manifest["inputs"][0]["name"],
        manifest["outputs"][0]["name"],
        parts.x_first,
        parts.y_first,
        epochs=epochs,
        learning_rate=learning_rate,
        seed=SEED,
    )
    for run in runs:
        parameters = run.pop("parameters", None)
        if parameters:
            arrays = {k: np.asarray(v["data"], np.float32).reshape(v["shape"]) for k, v in parameters.items()}
            run["mae_after"] = forecast_mae(personalized_model(version_dir, arrays), parts.x_later, parts.y_later)
        if "wallMs" in run:
            run["goal_met"] = run["wallMs"] <= WALL_GOAL_S * 1000 and run["maxLatenessMs"] <= LATENESS_GOAL_MS
    return {
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "person": person.id,
        "train_windows": len(parts.x_first),
        "first_seconds": first_seconds,
        "mae_before": forecast_mae(str(version_dir / "model.onnx"), parts.x_later, parts.y_later),
        "steps": step_times(version_dir),
        "personalise": runs,
        "goal": f"one personalisation <= {WALL_GOAL_S:g} s, page timers never late > {LATENESS_GOAL_MS:g} ms",
    }


def _browser_lines(browser: dict[str, Any] | None) -> list[str]:
    if browser is None:
        return ["Browser: not measured (`--no-browser`)."]
    lines = [
        "## In the browser (headless Chromium, the harness page)",
        "",
        f"Training step (`{browser['steps'][0]['file']}`, batch {browser['steps'][0]['batch']}), median of 5 runs:",
        "",
        r"| runtime | backend | ms per step | max \|diff\| vs onnxruntime |",
        "|---|---|---|---|",
    ]
    for row in browser["steps"]:
        ms = "-" if row["median_ms"] is None else f"{row['median_ms']:.1f}"
        diff = row.get("error", "cannot run") if row["max_abs_diff"] is None else f"{row['max_abs_diff']:.2e}"
        lines.append(f"| {row['runtime']} | {row['backend']} | {ms} | {diff} |")
    lines += [
        "",
        f"One `handler.personalize` on person {browser['person']}'s first {browser['first_seconds']:g} s "
        f"({browser['train_windows']} windows), a fresh page each; goal: {browser['goal']}. "
        f"MAE before {browser['mae_before']:.4f}. Load average (1, 5, 15 min) at the end: "
        f"{', '.join(map(str, browser['load_average']))} on {os.cpu_count()} cores.",
        "",
        "| run | data form | trained on | steps | wall time (s) | worst timer lateness (ms) | MAE after (browser) | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in browser["personalise"]:
        if "steps" not in run and "error" not in run:  # the idle control
            lines.append(f"| {run['run']} | - | - | - | - | {run['maxLatenessMs']:.1f} | - | - |")
            continue
        if "error" in run:
            lines.append(f"| {run['run']} | {run['data_form']} | failed: {run['error'][:120]} | | | | | |")
            continue
        lines.append(
            f"| {run['run']} | {run['data_form']} | {run['backend']} | {run['steps']} | {run['wallMs'] / 1000:.2f} | "
            f"{run['maxLatenessMs']:.1f} (at {run['worstAtMs'] / 1000:.2f} s; training from "
            f"{(run['trainingFromMs'] or 0) / 1000:.2f} s) | {run['mae_after']:.4f} | {'met' if run['goal_met'] else 'NOT met'} |"
        )
    return lines


def write_report(
    out: Path,
    rows: list[PersonRow],
    settings: dict[str, Any],
    command: str,
    browser: dict[str, Any] | None = None,
    sets: dict[str, Any] | None = None,
) -> Path:
    from .trainable_sets import report_lines, verdict

    out.mkdir(parents=True, exist_ok=True)
    total = summary(rows)
    data = {
        "command": command,
        "settings": settings,
        "summary": total,
        "people": [{**asdict(r), "change_percent": r.change_percent} for r in rows],
        "browser": browser,
        "sets": None if sets is None else {**sets, "verdict": verdict(sets, WALL_GOAL_S, LATENESS_GOAL_MS)},
    }
    (out / "personalisation.json").write_text(json.dumps(data, indent=1))
    lines = [
        "# Personalisation: does fine-tuning on a person's own ECG help?",
        "",
        f"`{command}`. Demo forecaster, head-only training step (`train.onnx`), Adam, "
        f"{settings['epochs']} epochs at learning rate {settings['learning_rate']:g}, shuffled, on the first "
        f"{settings['first_seconds']:g} s of each validation person's recording; MAE (mV) on the rest. "
        "Python: the exporter's onnxruntime runner of `train.onnx`, the personalised parameters written "
        "into `model.onnx` at their byte ranges.",
        "",
        "| person | heart rate (bpm) | train windows | test windows | steps | MAE before | MAE after (Python) "
        "| change | train time (s, Python) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.person} | {r.heart_rate:g} | {r.train_windows} | {r.test_windows} | {r.steps} | "
            f"{r.mae_before:.4f} | {r.mae_after:.4f} | {r.change_percent:+.1f} % | {r.seconds:.2f} |"
        )
    lines += [
        f"| **mean** | | | | | **{total['mae_before']:.4f}** | **{total['mae_after']:.4f}** | **{total['change_percent']:+.1f} %** | |",
        "",
        f"Goal ({total['goal']}): **{'met' if total['goal_met'] else 'NOT met'}**.",
        "",
        *_browser_lines(browser),
        *([] if sets is None else ["", *report_lines(sets, WALL_GOAL_S, LATENESS_GOAL_MS)]),
    ]
    path = out / "PERSONALISATION.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def demo_registry(cache: Path, prepare: Callable[[Path], tuple[Path, Path]]) -> Path:
    """The demo's registry in `cache`: reused when its export is newer than the build report (as
    `benchmarks.run`, run first by `make bench`, leaves it), else built and exported again."""
    from edgecloud.builder.report import REPORT_JSON
    from edgecloud.commands.demo import DEMO_NAME, artefact_dirs

    registry, _ = artefact_dirs(cache)
    report = cache / "build" / REPORT_JSON
    exported = sorted((registry / DEMO_NAME).glob("*/model.json"))
    if report.is_file() and exported and exported[-1].stat().st_mtime >= report.stat().st_mtime:
        manifest = json.loads(exported[-1].read_text())
        if "training" in manifest:
            return registry
    return prepare(cache)[0]


def say(line: str) -> None:
    print(f"personalisation: {line}", file=sys.stderr, flush=True)


def _sets(text: str) -> tuple[str, ...]:
    if text == "none":
        return ()
    chosen = tuple(part.strip() for part in text.split(","))
    for part in chosen:
        try:
            check_spec(part)
        except BadInputError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        if part == "none":
            raise argparse.ArgumentTypeError("'none' trains nothing: pass --sets none alone to leave the comparison out")
    return chosen


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give learning rates as numbers, comma-separated") from None
    if not all(rate > 0 and math.isfinite(rate) for rate in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: every learning rate must be positive")
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.personalisation", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny demo build and 1 epoch (for make test)")
    parser.add_argument("--out", type=Path, help="report folder (default benchmarks/results; smoke: WORK/results)")
    parser.add_argument("--work", type=Path, help="demo build cache and the set exports (default .edgecloud/bench[-smoke])")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"default {EPOCHS}")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help=f"default {LEARNING_RATE:g}")
    parser.add_argument(
        "--first-seconds",
        type=float,
        default=FIRST_SECONDS,
        help=f"seconds of each person's recording trained on (default {FIRST_SECONDS:g})",
    )
    parser.add_argument("--no-browser", action="store_true", help="leave out the Chromium measurements")
    parser.add_argument(
        "--sets",
        type=_sets,
        default=SETS,
        help=f"trainable sets to compare, comma-separated, or none (default {','.join(SETS)}; smoke: all)",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"browser rounds of the set comparison (default {ROUNDS}; smoke: 1)")
    parser.add_argument(
        "--rates",
        type=_rates,
        default=RATES,
        help=f"learning rates the Python runner tries per set (default {','.join(map(str, RATES))}; smoke: the --learning-rate)",
    )
    args = parser.parse_args(argv)
    if args.epochs < 1 or not args.learning_rate > 0 or not args.first_seconds > 0 or args.rounds < 1:
        parser.error("--epochs and --rounds must be at least 1, --learning-rate and --first-seconds positive")
    from edgecloud.builder.report import read_report
    from edgecloud.commands.demo import DEMO_NAME

    from .models import prepare_demo, prepare_small_demo

    work = args.work or REPO / ".edgecloud" / ("bench-smoke" if args.smoke else "bench")
    out = args.out or (work / "results" if args.smoke else DEFAULT_OUT)
    first_seconds = min(args.first_seconds, 6.0) if args.smoke else args.first_seconds
    epochs = 1 if args.smoke else args.epochs
    command = shlex.join(["python", "-m", "benchmarks.personalisation", *(argv if argv is not None else sys.argv[1:])])
    try:
        registry = demo_registry(work / "demo", prepare_small_demo if args.smoke else prepare_demo)
        latest = json.loads((registry / DEMO_NAME / "latest.json").read_text())
        version_dir, build = registry / DEMO_NAME / str(latest["version"]), read_report(work / "demo" / "build")
        rows = personalise_people(version_dir, build, first_seconds, epochs, args.learning_rate)
        browser = None if args.no_browser else browser_figures(version_dir, build, first_seconds, epochs, args.learning_rate)
        sets = None
        if args.sets:
            smoke_sets = tuple(s for s in args.sets if s in SMOKE_SETS) or args.sets[:1]
            folders = export_sets(work / "demo" / "build", work / "sets", DEMO_NAME, smoke_sets if args.smoke else args.sets, progress=say)
            sets = compare_sets(
                folders,
                build,
                first_seconds=first_seconds,
                epochs=epochs,
                learning_rate=args.learning_rate,
                rates=(args.learning_rate,) if args.smoke else args.rates,
                rounds=1 if args.smoke else args.rounds,
                seed=SEED,
                browser=not args.no_browser,
                progress=say,
            )
    except Exception as error:  # noqa: BLE001 - one clear line, exit 1
        print(f"personalisation: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    settings = {"first_seconds": first_seconds, "epochs": epochs, "learning_rate": args.learning_rate, "seed": SEED}
    path = write_report(out, rows, settings, command, browser, sets)
    print(f"personalisation: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
