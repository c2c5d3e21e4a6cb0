"""`edgecloud demo`: build (or reuse) the ECG forecaster → export → archive → serve, in one command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..stack import SIGNAL_FILE
from .build import add_build_options, settings_from
from .serve import add_serving_options, options_from, serve_until_stopped

if TYPE_CHECKING:
    from ..builder.build import BuildSettings

DEMO_NAME = "forecaster"
# Small enough for a cold `make demo` to build in one to two minutes on 2 CPU cores.
DEMO_TRIALS, DEMO_EPOCHS, DEMO_MAX_SECONDS = 4, 6, 150.0
# What the demo verifies in Chromium before serving, so the page runs the fastest verified runtime
# (model.json edge.ranking). Not webgl: on SwiftShader the unrolled LSTM takes ~12 s a run, minutes in all.
DEMO_VERIFY_TARGETS = [("onnxjs", "cpu"), ("onnxjs", "wasm"), ("onnxruntime-web", "wasm")]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="build the ECG forecaster, export, archive and serve it with the page",
        description=(
            "Run the Prediction Builder on simulated ECG (Conv1D + LSTM template, a short search; "
            "reused from CACHE/build when already built with the same settings), export the best "
            "model to ONNX with a parity check plus a browser file lowered for ONNX.js, verify it in headless "
            "Chromium (ONNX.js cpu/wasm, onnxruntime-web: the page then runs the fastest that passed), package "
            "it for Multi Model Server, then serve MMS and the page (URLs printed) until Ctrl-C."
        ),
    )
    parser.add_argument("--cache", type=Path, default=Path(".edgecloud/demo"), help="work folder (.edgecloud/demo)")
    parser.add_argument("--retrain", action="store_true", help="build again even if a model is cached")
    parser.add_argument("--no-serve", action="store_true", help="stop after archiving (for checks)")
    add_build_options(parser, trials=DEMO_TRIALS, epochs=DEMO_EPOCHS, max_seconds=DEMO_MAX_SECONDS)
    add_serving_options(parser)
    parser.set_defaults(run=run)


def say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def cached_build(settings: "BuildSettings", out: Path, rebuild: bool) -> tuple[Path, Path, dict[str, Any]]:
    """(model, sample, report) from `out` when built with the same settings, else a fresh build."""
    from ..builder.build import MODEL_FILE, SAMPLE_FILE, build
    from ..builder.report import read_report

    report = read_report(out)
    model_path, sample_path = out / MODEL_FILE, out / SAMPLE_FILE
    same = report is not None and report.get("settings") == settings.as_json()
    if same and not rebuild and model_path.is_file() and sample_path.is_file():
        say(f"reusing {model_path} (built {report['created']}; --retrain to build again)")
        return model_path, sample_path, report
    say(
        f"building {settings.template}: up to {settings.search.trials} trials of {settings.search.epochs} epochs, "
        f"at most {settings.search.max_seconds:g} s"
    )
    result = build(settings, out, progress=say)
    return result.model_path, result.sample_path, result.report


def demo_settings() -> "BuildSettings":
    """What `edgecloud demo` builds when given no build options."""
    from ..builder.build import BuildSettings
    from ..builder.data import DataSpec
    from ..builder.search import SearchSettings

    search = SearchSettings(trials=DEMO_TRIALS, max_seconds=DEMO_MAX_SECONDS, epochs=DEMO_EPOCHS)
    return BuildSettings(template="ecg-forecaster", search=search, data=DataSpec())


def write_page_signal(report: dict[str, Any], folder: Path) -> Path:
    """The first validation person's ECG as `folder/signal.json`, so the page streams the kind of
    signal the model learnt (a person it never trained on), not a made-up pulse train."""
    from ..builder.data import DataSpec, Person, ecg_signal

    spec = DataSpec(**report["settings"]["data"])
    person = Person(**report["data"]["validation_people"][0])
    path = Path(folder) / SIGNAL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    values = [round(float(v), 5) for v in ecg_signal(person, spec)]
    source = f"neurokit2 ecg_simulate, validation person {person.id} ({person.heart_rate:g} bpm)"
    path.write_text(json.dumps({"source": source, "sampling_rate": spec.sampling_rate, "unit": "mV", "data": values}))
    return path


def artefact_dirs(cache: Path) -> tuple[Path, Path]:
    """(registry, model_store) inside the demo's cache folder."""
    return Path(cache) / "registry", Path(cache) / "model-store"


def verify_in_browser(version_dir: Path) -> None:
    """`edgecloud verify` on DEMO_VERIFY_TARGETS (and on the training step), so model.json ranks
    the runtimes for the page and its trainer.

    Without Chromium the demo still runs: the page then uses the runtime model.json's edge entry marks.
    """
    from ..browser import BrowserError
    from ..edge_verify import format_ranking, row_name, verify_version
    from ..train_verify import verify_training

    say("verifying the browser file in headless Chromium (ONNX.js cpu/wasm, onnxruntime-web)")
    try:
        report = verify_version(version_dir, targets=DEMO_VERIFY_TARGETS, random_inputs=1)
    except BrowserError as error:
        say(f"WARNING: not verified in a browser ({error}); the page runs what model.json's edge entry marks")
        return
    say(format_ranking(report))
    failures = list(report.failures)
    # The training step too: the page's trainer runs the fastest runtime this verification passed.
    training = verify_training(version_dir, random_inputs=1, repeats=3)
    if training is not None:
        fastest = min((row for row in training.rows if row["passed"]), key=lambda row: row["median_ms"], default=None)
        say(
            "training step: "
            + (
                f"fastest verified {row_name(fastest)} ({fastest['median_ms']:.1f} ms per step)"
                if fastest
                else "no browser runtime passed; the page will not personalise"
            )
        )
        failures += [f"training step: {failure}" for failure in training.failures]
    if failures:
        say(f"WARNING: {'; '.join(failures)}")


def prepare(cache: Path, retrain: bool = False, settings: "BuildSettings | None" = None, verify: bool = True) -> tuple[Path, Path]:
    """Build (or reuse), export, verify in Chromium (unless `verify` is false) and archive every
    artefact of the demo; returns (registry, model_store)."""
    from export.pipeline import export_model
    from mms_handlers.archive import build_archive

    build_dir = Path(cache) / "build"
    model_path, sample_path, report = cached_build(settings or demo_settings(), build_dir, retrain)
    say(
        f"best val MAE {report['best']['val_mae']:.4f} mV (last value {report['baselines']['last_value']['val_mae']:.4f}, "
        f"repeat previous beat {report['baselines']['repeat_previous_beat']['val_mae']:.4f}); "
        f"report: {build_dir / 'report.md'}"
    )
    if not report["beats_baselines"]:
        say(f"WARNING: {report['verdict']} (serving it anyway: the demo shows the stack)")
    registry, model_store = artefact_dirs(cache)
    result = export_model(model_path, name=DEMO_NAME, version="1", out=registry, sample=sample_path, force=True, progress=say)
    if verify:
        verify_in_browser(result.version_dir)
    say(f"archived {build_archive(result.version_dir, model_store)}")
    say(f"wrote the page's ECG strip {write_page_signal(report, registry / DEMO_NAME)}")
    return registry, model_store


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    registry, model_store = artefact_dirs(args.cache)
    for folder in (registry, model_store):
        folder.mkdir(parents=True, exist_ok=True)
    options = options_from(args, model_store, registry)  # bad serving options fail before the build
    prepare(args.cache, args.retrain, settings)
    if args.no_serve:
        return 0
    return serve_until_stopped(options)
