"""`edgecloud demo`: train (or reuse) the demo model → export → archive → serve, in one command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .serve import add_serving_options, options_from, serve_until_stopped

DEMO_NAME = "forecaster"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train the demo model, export, archive and serve it with the page",
        description=(
            "Train a small Keras forecaster on a generated ECG-like signal (reused from the cache "
            "folder when already there), export it to ONNX with a parity check, package it for "
            "Multi Model Server, then serve MMS and the page until Ctrl-C."
        ),
    )
    parser.add_argument("--cache", type=Path, default=Path(".edgecloud/demo"), help="work folder (.edgecloud/demo)")
    parser.add_argument("--retrain", action="store_true", help="train again even if a model is cached")
    parser.add_argument("--no-serve", action="store_true", help="stop after archiving (for checks)")
    add_serving_options(parser)
    parser.set_defaults(run=run)


def prepare(cache: Path, retrain: bool = False) -> tuple[Path, Path]:
    """Build every artefact of the demo; returns (registry, model_store)."""
    from export.pipeline import export_model
    from mms_handlers.archive import build_archive

    from ..demo_model import train_demo_model

    def say(message: str) -> None:
        print(f"demo: {message}", file=sys.stderr)

    model_path, sample_path = cache / "model" / "forecaster.keras", cache / "model" / "sample.npy"
    if retrain or not (model_path.exists() and sample_path.exists()):
        say("training the demo forecaster (a few seconds)")
        model_path, sample_path = train_demo_model(cache / "model")
    else:
        say(f"reusing {model_path}")
    registry, model_store = cache / "registry", cache / "model-store"
    result = export_model(
        model_path, name=DEMO_NAME, version="1", out=registry, sample=sample_path, force=True, progress=say
    )
    say(f"archived {build_archive(result.version_dir, model_store)}")
    return registry, model_store


def run(args: argparse.Namespace) -> int:
    registry, model_store = prepare(args.cache, args.retrain)
    if args.no_serve:
        return 0
    return serve_until_stopped(options_from(args, model_store, registry))
